"""gunicorn settings for the engine: ``gunicorn -c config/gunicorn.py config.wsgi``.

The engine's requests are mostly Python (the GIL) with short database waits, so processes do
more than threads: 2 × cores + 1 processes of 2 threads each. Each thread keeps one database
connection (``CONN_MAX_AGE``): size PostgreSQL's ``max_connections`` for workers × threads.
Override with ``WEB_CONCURRENCY`` (processes), ``WEB_THREADS`` and ``BIND``.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", 2 * multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", 2))
