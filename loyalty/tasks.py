"""Celery tasks: thin; they take ids and call one service."""

from celery import shared_task

from accounts.services import member_links_forget
from loyalty.activity.decline import detect_churn_risk
from loyalty.activity.states import member_email_send, run_daily_activity_jobs
from loyalty.activity.webhooks import webhook_deliver, webhooks_dispatch_due
from loyalty.api.serializers import parse_stored_event_items
from loyalty.campaigns.runs import campaign_run_serve, run_due_campaigns
from loyalty.engine.batches import batch_job_run
from loyalty.engine.tier_review import review_tiers
from loyalty.gamification.badges import badge_backfill
from loyalty.gamification.leaderboards import leaderboards_heal, leaderboards_refresh
from loyalty.insight.job import refresh
from loyalty.ledger.points import activate_pending_points, expire_points
from loyalty.models import Badge, CampaignRun, SimulationRun
from loyalty.simulation.drafts import publish_due_drafts
from loyalty.simulation.runs import simulation_run


@shared_task(name="loyalty.process_event_batch", time_limit=15 * 60, acks_late=True)
def process_event_batch(job_id: str) -> dict:
    job = batch_job_run(job_id=job_id, parse=parse_stored_event_items)
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
    return {"badge_id": badge_id, "awarded": badge_backfill(badge=Badge.objects.get(pk=badge_id))}


@shared_task(name="loyalty.refresh_leaderboards", time_limit=15 * 60)
def refresh_leaderboards_task() -> int:
    return leaderboards_refresh()


@shared_task(name="loyalty.heal_leaderboards", time_limit=5 * 60, soft_time_limit=4 * 60)
def heal_leaderboards_task() -> int:
    return leaderboards_heal()


@shared_task(name="loyalty.deliver_webhook", time_limit=60, soft_time_limit=50, acks_late=True)
def deliver_webhook(delivery_id: int) -> str:
    return webhook_deliver(delivery_id=delivery_id).status


@shared_task(name="loyalty.dispatch_webhooks", time_limit=10 * 60)
def dispatch_webhooks_task() -> int:
    return webhooks_dispatch_due()


@shared_task(name="loyalty.daily_activity", time_limit=60 * 60)
def daily_activity_task() -> dict:
    return vars(run_daily_activity_jobs())


@shared_task(
    name="loyalty.send_member_email",
    time_limit=60,
    soft_time_limit=50,
    autoretry_for=(OSError,),
    retry_backoff=True,
    max_retries=5,
)
def send_member_email(member_id: int, template: str, context: dict) -> bool:
    return member_email_send(member_id=member_id, template=template, context=context)


@shared_task(name="loyalty.refresh_insight", time_limit=60 * 60)
def refresh_insight_task() -> dict:
    """The console's aggregates: the days that changed since the last run."""
    run = refresh()
    return {"as_of": run.as_of.isoformat(), "days": run.days, "seconds": run.seconds}


@shared_task(name="loyalty.run_campaigns", time_limit=60 * 60)
def run_campaigns_task() -> dict:
    """Campaign runs whose slot has come, and runs a crash left halfway."""
    return {"runs": [run.pk for run in run_due_campaigns()]}


@shared_task(name="loyalty.simulate_program", time_limit=2 * 60 * 60)
def simulate_program_task(run_id: int) -> dict:
    """A what-if simulation, run to its end (or until the operator cancels it)."""
    run = simulation_run(SimulationRun.objects.get(pk=run_id))
    return {"run": run.pk, "status": run.status, "seconds": run.seconds}


@shared_task(name="loyalty.forget_member_links", time_limit=10 * 60)
def forget_member_links_task() -> dict:
    """The uses of member-center links that have expired, forgotten."""
    return {"forgotten": member_links_forget()}


@shared_task(name="loyalty.publish_due_drafts", time_limit=10 * 60)
def publish_due_drafts_task() -> dict:
    """Program drafts whose scheduled time has come, published."""
    return {"versions": [version.number for version in publish_due_drafts()]}


@shared_task(name="loyalty.detect_churn_risk", time_limit=60 * 60)
def detect_churn_risk_task() -> dict:
    """Members whose key actions fell well below their own recent weeks."""
    return vars(detect_churn_risk())


@shared_task(name="loyalty.serve_campaign_run", time_limit=60 * 60, acks_late=True)
def serve_campaign_run_task(run_id: int) -> dict:
    """A campaign run started from the admin: serve its targets (safe to run again)."""
    return campaign_run_serve(CampaignRun.objects.get(pk=run_id))
