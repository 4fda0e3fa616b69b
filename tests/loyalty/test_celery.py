"""Celery wiring: tasks are registered, beat names real tasks, and an async batch is processed
by a real worker through a real Redis broker."""

import socket
import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings

from config.celery import app as celery_app
from loyalty.models import Event, EventBatchJob
from tests.factories import make_rule


def redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
        return True
    except OSError:
        return False


def test_every_beat_entry_names_a_registered_task():
    celery_app.loader.import_default_modules()
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in celery_app.tasks


def test_the_tier_review_task_runs_the_review(db):
    from loyalty.tasks import review_tiers_task

    assert review_tiers_task.delay().get() == {
        "reviewed": 0,
        "downgraded": 0,
        "upgraded": 0,
        "grace_started": 0,
    }


def _drop_broker_connections() -> None:
    # Eager runs already built a producer pool for the old broker URL; Celery resets these
    # two after a fork, and so do we when switching brokers in one process.
    celery_app._pool = None
    celery_app.amqp._producer_pool = None


@pytest.fixture
def redis_worker():
    if not redis_reachable():
        pytest.skip("needs Redis on 127.0.0.1:6379")
    previous = {
        key: celery_app.conf[key] for key in ("broker_url", "task_always_eager", "result_backend")
    }
    _drop_broker_connections()
    celery_app.conf.update(
        broker_url="redis://127.0.0.1:6379/15", task_always_eager=False, result_backend=None
    )
    try:
        with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=5):
            yield
    finally:
        celery_app.conf.update(previous)
        _drop_broker_connections()


@pytest.mark.postgres
def test_an_async_batch_is_processed_by_a_worker_through_the_broker(api, redis_worker):
    make_rule("purchase", points_per_occurrence=10)
    items = [
        {"external_id": f"m{i}", "action": "purchase", "idempotency_key": f"w-{i}"}
        for i in range(5)
    ]
    accepted = api.post("/api/v1/events/batch", params={"async": "true"}, json={"events": items})
    assert accepted.status_code == 202
    job_id = accepted.json()["job_id"]
    deadline = time.monotonic() + 30
    while EventBatchJob.objects.get(pk=job_id).status != "done" and time.monotonic() < deadline:
        time.sleep(0.1)
    job = api.get(f"/api/v1/events/batch/{job_id}").json()
    assert (job["status"], job["succeeded"]) == ("done", 5)
    assert Event.objects.count() == 5
