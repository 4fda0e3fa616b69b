"""Asynchronous event batches: accepted at once, processed by a Celery task, read back."""

from collections.abc import Callable, Sequence
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiClient
from core.errors import DomainError
from core.tasks import queue_after_commit
from loyalty.engine.events import EventInput, record_events
from loyalty.models import EventBatchJob


def batch_job_submit(*, client: ApiClient, items: list[Any]) -> EventBatchJob:
    """Store the batch as posted and queue its processing after commit."""
    job = EventBatchJob.objects.create(client=client, items=items, total=len(items))
    queue_after_commit("loyalty.process_event_batch", str(job.pk))
    return job


def batch_job_run(
    *, job_id: str, parse: Callable[[list[Any]], Sequence[EventInput | DomainError]]
) -> EventBatchJob:
    """Process a queued job once: a job already done (a redelivered task) is left alone."""
    with transaction.atomic():
        job = EventBatchJob.objects.select_for_update().get(pk=job_id)
        if job.status == EventBatchJob.Status.DONE:
            return job
        job.status = EventBatchJob.Status.RUNNING
        job.save(update_fields=["status"])
    # Recording is idempotent per item, so a rerun after a crash is safe.
    results = [r.as_dict() for r in record_events(client=job.client, events=parse(job.items))]
    job.results = results
    job.succeeded = sum(1 for r in results if r["ok"])
    job.failed = len(results) - job.succeeded
    job.status = EventBatchJob.Status.DONE
    job.finished_at = timezone.now()
    job.save(update_fields=["results", "succeeded", "failed", "status", "finished_at"])
    return job
