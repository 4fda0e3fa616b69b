"""The engine's web server: ``python -m config.serve``.

granian (an HTTP server written in Rust) runs the WSGI application. Its HTTP handling costs the
cores far less than a server in Python: a trivial application cost about half the CPU a request
behind it that it cost behind gunicorn's threaded workers, and in turns on the bench the engine
served more single events and redemptions (docs/performance.md, appendix).

The engine's requests are mostly Python (the GIL) with short database waits, and the database
shares the cores: cores + 1 processes of 2 threads each keep the cores busy without making
processes, threads and database backends take turns on them (measured in docs/performance.md:
more processes served fewer requests). The second thread serves a request while the first
waits on a long one, such as a large batch. Each thread keeps one database connection
(``CONN_MAX_AGE``): size PostgreSQL's ``max_connections`` for processes × threads.

Environment: ``WEB_CONCURRENCY`` (processes), ``WEB_THREADS`` (threads a process),
``BIND`` (``host:port``, or ``unix:/path`` for a socket; default ``0.0.0.0:8000``). The admin's
static files are served from ``STATIC_ROOT`` once ``collectstatic`` has filled it.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

APPLICATION = "config.wsgi:application"


def server_options(environ: Mapping[str, str], *, cores: int) -> dict[str, Any]:
    """granian's settings for this environment."""
    from granian.constants import Interfaces
    from granian.log import LogLevels

    options: dict[str, Any] = {
        "interface": Interfaces.WSGI,
        "workers": int(environ.get("WEB_CONCURRENCY") or cores + 1),
        "blocking_threads": int(environ.get("WEB_THREADS") or 2),
        # A worker that dies is replaced, as a process manager would.
        "respawn_failed_workers": True,
        "log_level": LogLevels((environ.get("LOG_LEVEL") or "info").lower()),
    }
    bind = environ.get("BIND") or "0.0.0.0:8000"
    if bind.startswith("unix:"):
        options["uds"] = Path(bind.removeprefix("unix:"))
    else:
        host, _, port = bind.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"BIND must be host:port or unix:/path, not {bind!r}")
        options["address"], options["port"] = host.strip("[]"), int(port)
    return options


def static_mount() -> dict[str, Any]:
    """The admin's collected static files at ``STATIC_URL``, where ``STATIC_ROOT`` exists."""
    from django.conf import settings

    root = Path(settings.STATIC_ROOT)
    if not root.is_dir():
        return {}
    return {
        "static_path_route": ["/" + settings.STATIC_URL.strip("/")],
        "static_path_mount": [root],
    }


def main() -> None:
    from granian import Granian

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    # A request's statement never runs (or waits on a lock) past 30 s: the API answers 503.
    os.environ.setdefault("DATABASE_STATEMENT_TIMEOUT", "30000")
    options = server_options(os.environ, cores=os.cpu_count() or 1)
    Granian(APPLICATION, **options, **static_mount()).serve()


if __name__ == "__main__":
    main()
