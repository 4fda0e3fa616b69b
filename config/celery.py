"""The Celery app: tasks are discovered from the installed apps.

Without ``CELERY_BROKER_URL`` every task runs inline (``task_always_eager``), so the demo and
the tests need no broker; with it, workers run tasks and beat runs ``CELERY_BEAT_SCHEDULE``.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("loyalty")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
