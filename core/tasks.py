"""Celery tasks queued by their registered name, once the transaction commits.

A service that needs a task (deliver a webhook, send an e-mail, process a batch) asks for it by
name: importing the tasks module would import the services that module calls, and so every
service back. The registry knows the task once the installed apps' task modules are imported,
which a worker does at start and this does on first use.
"""

from typing import Any

from celery import current_app
from django.db import transaction


def queue(name: str, *args: Any) -> None:
    """Queue the task ``name`` now (inline when Celery runs tasks eagerly)."""
    if name not in current_app.tasks:
        current_app.loader.import_default_modules()
    current_app.tasks[name].delay(*args)


def queue_after_commit(name: str, *args: Any) -> None:
    """Queue the task ``name`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(lambda: queue(name, *args))
