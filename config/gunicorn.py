"""gunicorn settings for the engine: ``gunicorn -c config/gunicorn.py config.wsgi``.

The engine's requests are mostly Python (the GIL) with short database waits, and the database
shares the cores: cores + 1 processes of 2 threads each keep the cores busy without making
processes, threads and database backends take turns on them (measured in docs/performance.md:
more processes served fewer requests). The second thread serves a connection while the first
waits on a long request, such as a large batch. Each thread keeps one database connection
(``CONN_MAX_AGE``): size PostgreSQL's ``max_connections`` for workers × threads. Override with
``WEB_CONCURRENCY`` (processes), ``WEB_THREADS`` and ``BIND``.
"""

import multiprocessing
import os

bind = os.environ.get("BIND", "0.0.0.0:8000")
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count() + 1))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", 2))
