"""Celery tasks queued by their registered name, once the transaction commits.

A service that needs a task (deliver a webhook, send an e-mail, process a batch) asks for it by
name: importing the tasks module would import the services that module calls, and so every
service back. The registry knows the task once the installed apps' task modules are imported,
which a worker does at start and this does on first use.
"""

import logging
import threading
from typing import Any

from celery import current_app
from django.db import transaction

log = logging.getLogger(__name__)

# Threads of one process meeting their first task at once: one imports the task modules while
# the others wait (one finding a module half-imported would find no task under the name).
_importing = threading.Lock()


def queue(name: str, *args: Any) -> None:
    """Queue the task ``name`` now (inline when Celery runs tasks eagerly)."""
    if name not in current_app.tasks:
        with _importing:
            if name not in current_app.tasks:
                current_app.loader.import_default_modules()
    current_app.tasks[name].delay(*args)


def queue_after_commit(name: str, *args: Any) -> None:
    """Queue the task ``name`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: queue(name, *args))


def queue_or_log(name: str, *args: Any) -> None:
    """Queue the task ``name`` now, for work a periodic job finds again if it is lost: a broker
    that is down (or, run eagerly, the task failing) is logged, not raised."""
    try:
        queue(name, *args)
    except Exception:
        log.warning(
            "task %s%r not queued; its periodic job will find it", name, args, exc_info=True
        )


def queue_after_commit_or_sweep(name: str, *args: Any) -> None:
    """As ``queue_after_commit``, through ``queue_or_log``: a lost queueing is not raised into
    the request whose transaction has already committed."""
    transaction.on_commit(lambda: queue_or_log(name, *args))
