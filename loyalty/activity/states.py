"""Member activity from the key action, gifts (welcome, return, birthday), and the daily jobs
that move states, grant birthday gifts and warn of expiring points.

Functions ending in ``_locked`` need the caller to hold the member's standing lock.
"""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db.models import Q, Sum
from django.template.loader import render_to_string
from django.utils import timezone, translation

from accounts.models import Member
from core import sql
from core.tasks import queue_after_commit
from loyalty.gamification.badges import badge_award
from loyalty.gamification.bonus import grant_bonus
from loyalty.ledger.session import member_session
from loyalty.models import (
    ActivityState,
    ActivityTransition,
    Gift,
    GiftGrant,
    KeyAction,
    MemberActivity,
    MemberStanding,
    PointLot,
    SourceType,
)
from loyalty.outbox import webhook_emit
from loyalty.periods import local_date, start_of_day
from loyalty.persistence.queries import member_ids_in_chunks
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.program.compiled import program_settings, program_snapshot


def key_action_at(at: datetime) -> KeyAction | None:
    """The key action definition in force at ``at`` (definitions are dated), from the program
    the event flow compiled at its start."""
    return next((d for d in program_snapshot().key_actions if d.effective_from <= at), None)


def state_after(days: int, *, ever_active: bool) -> str:
    program = program_settings()
    if days >= program.churned_after_days:
        return ActivityState.CHURNED
    if days >= program.at_risk_after_days:
        return ActivityState.AT_RISK
    if days >= program.silent_after_days:
        return ActivityState.SILENT
    return ActivityState.ACTIVE if ever_active else ActivityState.NEW


def activity_row(work: UnitOfWork, member: Member) -> MemberActivity:
    return work.row(
        MemberActivity,
        member.pk,
        index=lambda activity: activity.pk,
        query=lambda ids: MemberActivity.objects.filter(sql.AnyOf("pk", ids)),
        new=lambda: MemberActivity(member=member, since=member.joined_at),
    )


def _transition(work: UnitOfWork, activity: MemberActivity, to_state: str, at: datetime) -> None:
    from_state = activity.state
    if from_state == to_state:
        return
    activity.state, activity.since = to_state, at
    ActivityTransition.objects.create(
        member_id=activity.pk, from_state=from_state, to_state=to_state, at=at
    )
    external_id = work.external_id(activity.pk)
    webhook_emit(
        work=work,
        type="member.activity_changed",
        member_id=activity.pk,
        data={"member": external_id, "from": from_state, "to": to_state, "at": at.isoformat()},
    )
    if to_state == ActivityState.AT_RISK:
        member_email(member_id=activity.pk, template="we_miss_you", context={})


def activity_on_event_locked(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    member: Member,
    action_id: int,
    occurred_at: datetime,
) -> str | None:
    """Count the event towards the key action of its day; a day that reaches the minimum makes
    the member active (or returned, with the return gift, if they had churned). Returns the
    new state, if it changed."""
    definition = key_action_at(occurred_at)
    if definition is None or definition.action_id != action_id:
        return None
    activity = activity_row(work, member)
    day = local_date(occurred_at)
    if activity.key_day != day:
        activity.key_day, activity.key_count = day, 0
    activity.key_count += 1
    before = activity.state
    if activity.key_count >= definition.min_per_day and (
        activity.last_key_day is None or day > activity.last_key_day
    ):
        activity.last_key_day = day
        if activity.state == ActivityState.CHURNED:
            activity.returned_on = day
            _transition(work, activity, ActivityState.RETURNED, occurred_at)
            gift_grant_locked(
                work=work,
                standing=standing,
                kind=Gift.Kind.RETURN,
                occasion=f"return:{day.isoformat()}",
                at=occurred_at,
            )
        elif not (activity.state == ActivityState.RETURNED and activity.returned_on == day):
            _transition(work, activity, ActivityState.ACTIVE, occurred_at)
    work.changed(activity)
    return activity.state if activity.state != before else None


def _active_gifts() -> dict[str, Gift]:
    return {gift.kind: gift for gift in Gift.objects.filter(is_active=True).select_related("badge")}


def gift_grant_locked(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    kind: str,
    occasion: str,
    at: datetime | None = None,
) -> GiftGrant | None:
    """Give the program's gift of this kind once per member and occasion, counting from ``at``
    (the event that earned it; default now). The active gifts are read once per unit of work."""
    gift = work.memo("gifts", _active_gifts).get(kind)
    if (
        gift is None
        or GiftGrant.objects.filter(member_id=standing.pk, kind=kind, occasion=occasion).exists()
    ):
        return None
    grant = GiftGrant.objects.create(
        member_id=standing.pk, kind=kind, occasion=occasion, points=gift.points, growth=gift.growth
    )
    grant_bonus(
        work,
        standing,
        SourceType.GIFT,
        grant,
        kind,
        f"{gift.get_kind_display()} gift",
        gift.growth,
        gift.points,
        at=at,
    )
    if gift.badge_id:
        badge_award(work=work, standing=standing, badge=gift.badge, at=at)
    external_id = work.external_id(standing.pk)
    webhook_emit(
        work=work,
        type="gift.granted",
        member_id=standing.pk,
        data={
            "member": external_id,
            "kind": kind,
            "occasion": occasion,
            "points": gift.points,
            "growth": gift.growth,
        },
    )
    return grant


def member_email(*, member_id: int, template: str, context: dict) -> None:
    """Queue an e-mail to the member after commit, if the program sends e-mails and the
    member has an address."""
    if not program_settings().send_emails:
        return
    queue_after_commit("loyalty.send_member_email", member_id, template, context)


def member_email_send(*, member_id: int, template: str, context: dict) -> bool:
    member = Member.objects.filter(pk=member_id).exclude(email="").first()
    if member is None:
        return False
    full = {**context, "member": member, "program": program_settings()}
    # In the program's language, whatever request or job happens to send it.
    with translation.override(settings.LANGUAGE_CODE):
        subject = render_to_string(f"emails/{template}_subject.txt", full).strip()
        body = render_to_string(f"emails/{template}.txt", full)
    send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [member.email])
    return True


# --- Daily jobs -------------------------------------------------------------------------------


@dataclass
class DailyReport:
    transitions: int = 0
    birthday_gifts: int = 0
    expiring_notices: int = 0


def update_activity_states(*, at: datetime | None = None, chunk_size: int = 500) -> int:
    """Move members along new/active → silent → at risk → churned by the days since their last
    key-action day (or since joining, for members never active). Returns transitions made."""
    at = at or timezone.now()
    today = local_date(at)
    for member in Member.objects.filter(activity__isnull=True, standing__isnull=False).iterator(
        chunk_size=chunk_size
    ):
        MemberActivity.objects.get_or_create(member=member, defaults={"since": member.joined_at})
    silent_cutoff = today - timedelta(days=program_settings().silent_after_days)
    candidates = MemberActivity.objects.exclude(state=ActivityState.CHURNED).filter(
        Q(last_key_day__lte=silent_cutoff)
        | Q(
            last_key_day__isnull=True,
            member__joined_at__lt=start_of_day(silent_cutoff + timedelta(days=1)),
        )
    )
    moved = 0
    for ids in member_ids_in_chunks(candidates, chunk_size):
        for member_id in ids:
            with member_session(member_id) as session:
                work = session.work
                activity = MemberActivity.objects.select_related("member").get(pk=member_id)
                reference = activity.last_key_day or local_date(activity.member.joined_at)
                target = state_after(
                    (today - reference).days, ever_active=activity.last_key_day is not None
                )
                if target != activity.state and _decays(activity.state, target):
                    _transition(work, activity, target, at)
                    activity.save(update_fields=["state", "since"])
                    moved += 1
    return moved


def _decays(current: str, target: str) -> bool:
    """The daily job only moves members further from activity; events bring them back."""
    rank = {
        ActivityState.NEW: 0,
        ActivityState.RETURNED: 0,
        ActivityState.ACTIVE: 0,
        ActivityState.SILENT: 1,
        ActivityState.AT_RISK: 2,
        ActivityState.CHURNED: 3,
    }
    return rank[target] > rank[current]


def grant_birthday_gifts(*, at: datetime | None = None) -> int:
    """Members whose birthday is today (local; 29 February counts on the 28th in other years)."""
    at = at or timezone.now()
    today = local_date(at)
    days = [(today.month, today.day)]
    if today.month == 2 and today.day == 28 and not _is_leap(today.year):
        days.append((2, 29))
    query = Q()
    for month, day in days:
        query |= Q(birthday__month=month, birthday__day=day)
    granted = 0
    for member_id in Member.objects.filter(query).values_list("pk", flat=True).iterator():
        with member_session(member_id) as session:
            standing, work = session.standing, session.work
            if gift_grant_locked(
                work=work,
                standing=standing,
                kind=Gift.Kind.BIRTHDAY,
                occasion=f"birthday:{today.year}",
            ):
                granted += 1
    return granted


def _is_leap(year: int) -> bool:
    return date(year, 3, 1) - date(year, 2, 28) == timedelta(days=2)


def notify_expiring_points(*, at: datetime | None = None) -> int:
    """Tell each member once about points expiring within the notice period (webhook and
    e-mail). Returns members notified."""
    at = at or timezone.now()
    horizon = at + timedelta(days=program_settings().expiring_notice_days)
    due = PointLot.objects.filter(
        pending=False,
        remaining__gt=0,
        expiry_notified_at__isnull=True,
        expires_at__gt=at,
        expires_at__lte=horizon,
    )
    notified = 0
    for member_id in due.values_list("member_id", flat=True).distinct().order_by("member_id"):
        with member_session(member_id) as session:
            work = session.work
            lots = due.filter(member_id=member_id)
            rows = list(
                lots.values("expires_at").annotate(points=Sum("remaining")).order_by("expires_at")
            )
            if not rows:
                continue
            lots.update(expiry_notified_at=at)
            external_id = work.external_id(member_id)
            expiring = [
                {"expires_at": r["expires_at"].isoformat(), "points": r["points"]} for r in rows
            ]
            total = sum(r["points"] for r in rows)
            webhook_emit(
                work=work,
                type="points.expiring_soon",
                member_id=member_id,
                data={"member": external_id, "points": total, "expiring": expiring},
            )
            member_email(
                member_id=member_id,
                template="points_expiring",
                context={"points": total, "expiring": expiring},
            )
            notified += 1
    return notified


def run_daily_activity_jobs(*, at: datetime | None = None) -> DailyReport:
    return DailyReport(
        transitions=update_activity_states(at=at),
        birthday_gifts=grant_birthday_gifts(at=at),
        expiring_notices=notify_expiring_points(at=at),
    )
