"""Celery tasks: thin; they take ids and call one service."""

from celery import shared_task

from loyalty.api.serializers import parse_event_items
from loyalty.services.batches import batch_job_run
from loyalty.services.points import activate_pending_points, expire_points
from loyalty.services.tiers import review_tiers


@shared_task(name="loyalty.process_event_batch", time_limit=15 * 60, acks_late=True)
def process_event_batch(job_id: str) -> dict:
    job = batch_job_run(job_id=job_id, parse=parse_event_items)
    return {"job_id": str(job.pk), "succeeded": job.succeeded, "failed": job.failed}


@shared_task(name="loyalty.review_tiers", time_limit=60 * 60)
def review_tiers_task() -> dict:
    report = review_tiers()
    return vars(report)


@shared_task(name="loyalty.expire_points", time_limit=60 * 60)
def expire_points_task() -> dict:
    return vars(expire_points())


@shared_task(name="loyalty.activate_pending_points", time_limit=60 * 60)
def activate_pending_points_task() -> dict:
    return vars(activate_pending_points())


@shared_task(name="loyalty.backfill_badge", time_limit=60 * 60)
def backfill_badge_task(badge_id: int) -> dict:
    from loyalty.models import Badge
    from loyalty.services.gamification import badge_backfill

    return {"badge_id": badge_id, "awarded": badge_backfill(badge=Badge.objects.get(pk=badge_id))}
