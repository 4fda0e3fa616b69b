"""Running campaigns.

A run belongs to one slot of its campaign's schedule (unique: two schedulers never run a slot
twice). It starts by snapshotting its audience — the segment's members then, each a target, a
share of them held out at random — and then serves the targets one by one, each in its own
transaction under the member's lock:

- a grant of points or growth goes through the operator-adjustment path, and a reward through
  the catalog's gift (a redemption at no cost, registered by the rewards app), each keyed by
  the run and the member, so a run served again (a retry, a crash halfway) grants nothing
  twice; a budget is reserved by a conditional update of the campaign's row, so concurrent
  runs never spend past it;
- a message (e-mail, or the ``campaign.message`` webhook for the host's push or SMS) is sent
  unless the member was contacted ``LOYALTY_CONTACTS_PER_WEEK`` times in the last 7 days, across
  campaigns, or is active and the campaign leaves active members alone.

Held-out members get nothing; they are the baseline the recall report compares with.
"""

import hashlib
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Count, F
from django.template import Context, Template
from django.utils import timezone

from accounts.models import Member
from core.errors import BusinessRuleViolation, DomainError, NotFound
from loyalty.activity.states import activity_row
from loyalty.engine.adjustments import adjust
from loyalty.ledger.session import member_session
from loyalty.models import (
    ActivityState,
    Campaign,
    CampaignRun,
    CampaignTarget,
    Currency,
    KeyActiveDay,
)
from loyalty.outbox import webhook_emit
from loyalty.periods import local_date
from loyalty.segments.filters import segment_members

Outcome = CampaignTarget.Outcome
CHUNK = 500


@dataclass(frozen=True)
class RewardGift:
    """How a campaign gives a reward; the rewards catalog registers it when its app is ready.
    ``give(member, reward_code, idempotency_key, reason)`` raises a ``DomainError`` with a
    stable code when the reward's rules refuse; ``exists(reward_code)`` checks a code."""

    give: Callable[[Member, str, str, str], object]
    exists: Callable[[str], bool]


_gifts: list[RewardGift] = []


def register_reward_gift(gift: RewardGift) -> None:
    _gifts[:] = [gift]


def reward_gift() -> RewardGift | None:
    """The registered way to give rewards; None without a rewards catalog."""
    return _gifts[0] if _gifts else None


def latest_slot(campaign: Campaign, now: datetime) -> datetime | None:
    """The latest slot of the schedule that has come (missed earlier ones are not caught up)."""
    if not campaign.is_active or campaign.starts_at > now:
        return None
    if campaign.ends_at and now > campaign.ends_at:
        return None
    if campaign.repeat == Campaign.Repeat.ONCE:
        return campaign.starts_at
    step = timedelta(days=1 if campaign.repeat == Campaign.Repeat.DAILY else 7)
    return campaign.starts_at + step * ((now - campaign.starts_at) // step)


def run_due_campaigns(*, now: datetime | None = None) -> list[CampaignRun]:
    """Start and serve the runs whose slot has come (the beat task, every few minutes)."""
    now = now or timezone.now()
    runs = []
    for campaign in Campaign.objects.filter(is_active=True, starts_at__lte=now):
        slot = latest_slot(campaign, now)
        if slot is not None and not campaign.runs.filter(scheduled_for=slot).exists():
            run = campaign_run_start(campaign, scheduled_for=slot)
            if run is not None:
                campaign_run_serve(run)
                runs.append(run)
    # Runs a crash left halfway through are served to their end.
    for run in CampaignRun.objects.filter(status=CampaignRun.Status.RUNNING).exclude(
        pk__in=[r.pk for r in runs]
    ):
        campaign_run_serve(run)
    return runs


def held_out(run: CampaignRun, member_id: int, percent: int) -> bool:
    """A member's place in or out of the holdout: random across members, fixed for the run."""
    digest = hashlib.sha256(f"{run.pk}:{member_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < percent


def campaign_run_start(campaign: Campaign, *, scheduled_for: datetime) -> CampaignRun | None:
    """Create the slot's run and snapshot its audience; None if the slot already has one."""
    try:
        with transaction.atomic():
            run = CampaignRun.objects.create(campaign=campaign, scheduled_for=scheduled_for)
            ids = list(
                segment_members(campaign.segment).order_by("pk").values_list("pk", flat=True)
            )
            CampaignTarget.objects.bulk_create(
                [
                    CampaignTarget(
                        run=run,
                        member_id=member_id,
                        outcome=Outcome.HOLDOUT
                        if held_out(run, member_id, campaign.holdout_percent)
                        else Outcome.PENDING,
                    )
                    for member_id in ids
                ],
                batch_size=5_000,
            )
            run.audience = len(ids)
            run.save(update_fields=["audience"])
    except IntegrityError:
        return None  # another scheduler started this slot
    return run


def campaign_run_serve(run: CampaignRun) -> dict[str, int]:
    """Serve every pending target of the run, in member order; safe to call again."""
    campaign = run.campaign
    while True:
        pending = list(
            run.targets.filter(outcome=Outcome.PENDING)
            .order_by("member_id")
            .values_list("pk", flat=True)[:CHUNK]
        )
        if not pending:
            break
        for target_id in pending:
            _serve(campaign, run, target_id)
    run.status, run.finished_at = CampaignRun.Status.DONE, timezone.now()
    run.save(update_fields=["status", "finished_at"])
    return outcomes(run)


def outcomes(run: CampaignRun) -> dict[str, int]:
    rows = run.targets.values("outcome").annotate(n=Count("pk"))
    return {row["outcome"]: row["n"] for row in rows}


def _serve(campaign: Campaign, run: CampaignRun, target_id: int) -> None:
    with transaction.atomic():
        target = (
            CampaignTarget.objects.select_for_update().select_related("member").get(pk=target_id)
        )
        if target.outcome != Outcome.PENDING:
            return  # served by a concurrent call
        if campaign.grants:
            _grant(campaign, run, target)
        else:
            _message(campaign, run, target)
        target.at = timezone.now()
        target.save(update_fields=["outcome", "amount", "webhook_event", "detail", "at"])


def _grant(campaign: Campaign, run: CampaignRun, target: CampaignTarget) -> None:
    cost = campaign.unit_cost
    key, reason = f"campaign:{run.pk}:{target.member_id}", f"Campaign: {campaign.name}"
    try:
        with transaction.atomic():  # the reservation and the grant stand or fall together
            if campaign.budget is not None:
                reserved = Campaign.objects.filter(
                    pk=campaign.pk, spent__lte=F("budget") - cost
                ).update(spent=F("spent") + cost)
                if not reserved:
                    target.outcome = Outcome.OVER_BUDGET
                    return
            if campaign.kind == Campaign.Kind.REWARD:
                gift = reward_gift()
                if gift is None:
                    raise DomainError("No rewards catalog is installed.", code="no_catalog")
                gift.give(target.member, campaign.reward, key, reason)
            else:
                adjust(
                    member=target.member,
                    currency=Currency.POINTS
                    if campaign.kind == Campaign.Kind.POINTS
                    else Currency.GROWTH,
                    amount=cost,
                    reason=reason,
                    idempotency_key=key,
                )
    except DomainError as error:
        refused = campaign.kind == Campaign.Kind.REWARD and isinstance(
            error, BusinessRuleViolation | NotFound
        )
        target.outcome = Outcome.REFUSED if refused else Outcome.FAILED
        target.detail = error.code
        return
    target.outcome, target.amount = Outcome.GRANTED, cost


def _message(campaign: Campaign, run: CampaignRun, target: CampaignTarget) -> None:
    member = target.member
    with member_session(member.pk) as session:  # one member's contacts counted under its lock
        if (
            not campaign.include_active
            and activity_row(session.work, member).state == ActivityState.ACTIVE
        ):
            target.outcome = Outcome.ACTIVE
            return
        week_ago = timezone.now() - timedelta(days=7)
        contacts = CampaignTarget.objects.filter(
            member=member, outcome=Outcome.SENT, at__gte=week_ago
        ).count()
        if contacts >= settings.LOYALTY_CONTACTS_PER_WEEK:
            target.outcome = Outcome.TOO_OFTEN
            return
        context = Context(
            {"name": member.display_name or member.external_id, "points": session.standing.points}
        )
        subject = Template(campaign.subject).render(context)
        body = Template(campaign.body).render(context)
        if campaign.kind == Campaign.Kind.EMAIL:
            if not member.email:
                target.outcome = Outcome.NO_EMAIL
                return
            try:
                send_mail(subject, body, None, [member.email])
            except (OSError, smtplib.SMTPException):
                target.outcome = Outcome.FAILED  # the mail server refused: not retried
                return
        else:
            target.webhook_event = webhook_emit(
                work=session.work,
                type="campaign.message",
                member_id=member.pk,
                data={
                    "member": member.external_id,
                    "campaign": campaign.code,
                    "run_id": run.pk,
                    "subject": subject,
                    "body": body,
                },
            )
        target.outcome = Outcome.SENT


# --- Recall: reached → delivered → returned → retained, against the holdout --------------------


@dataclass
class Recall:
    targets: int
    delivered: int  # of the reached only: the held-out ones are sent nothing
    returned: int
    retained: int

    def share(self, part: int) -> float | None:
        return 100 * part / self.targets if self.targets else None


def recall(run: CampaignRun) -> dict[str, Recall]:
    """For the members reached and for the held-out ones: how many came back (the key action
    within the campaign's return days after the run) and stayed (the key action in the fifth
    week after it, days 28 to 34). Read from the console's key-action days."""
    day = local_date(run.scheduled_for)
    back_until = day + timedelta(days=run.campaign.return_days)
    reached = run.targets.filter(outcome__in=[Outcome.GRANTED, Outcome.SENT])
    sent = reached.filter(outcome=Outcome.SENT)
    delivered = (
        reached.filter(outcome=Outcome.GRANTED).count()
        + sent.filter(webhook_event__isnull=True).count()  # e-mails, accepted on sending
        + sent.filter(webhook_event__deliveries__status="succeeded").distinct().count()
    )
    found = {}
    for name, targets in (
        ("reached", reached),
        ("holdout", run.targets.filter(outcome=Outcome.HOLDOUT)),
    ):
        active = KeyActiveDay.objects.filter(member_id__in=targets.values("member_id"))
        found[name] = Recall(
            targets=targets.count(),
            delivered=delivered if name == "reached" else 0,
            returned=active.filter(day__gt=day, day__lte=back_until)
            .values("member_id")
            .distinct()
            .count(),
            retained=active.filter(
                day__gte=day + timedelta(days=28), day__lt=day + timedelta(days=35)
            )
            .values("member_id")
            .distinct()
            .count(),
        )
    return found
