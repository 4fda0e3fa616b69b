"""Qualification and rewards.

In the event flow (an observer, inside the recording transaction, under the invited member's
lock): the first qualifying action of an invited member within the window marks the referral
qualified, exactly once (the referral row is locked and only one without a qualifying event is
taken). After commit a task credits both members through the rule engine, with the system
actions ``referral_qualified`` (the inviter) and ``referred_welcome`` (the invited member) and
idempotency keys made from the referral and its qualifying event: a retry, or a second task,
records nothing twice. A refund of the qualifying order holds the referral for review and takes
both credits back through the ordinary reversal path.
"""

import logging
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import sql
from core.errors import DomainError
from core.tasks import queue_after_commit_or_sweep
from loyalty.engine.events import record_events
from loyalty.engine.inputs import EventInput
from loyalty.engine.reversals import ReversalRefused, event_reverse
from loyalty.models import Event
from loyalty.outbox import webhook_emit
from loyalty.program.compiled import CompiledProgram, compiled_program
from loyalty.program.rules import as_decimal, read_attribute
from rewards.referrals.models import INVITEE_ACTION, INVITER_ACTION, InviterTally, Referral
from rewards.referrals.program import ReferralRules, referral_rules, referral_settings_changed

log = logging.getLogger(__name__)

OPEN = (Referral.State.JOINED, Referral.State.HELD)


def qualifies(rules: ReferralRules, attributes: dict) -> bool:
    if rules.min_amount <= 0:
        return True
    amount = as_decimal(read_attribute(attributes, rules.amount_attribute))
    return amount is not None and amount >= rules.min_amount


def referrals_on_events(program: CompiledProgram, events: Sequence[Event]) -> None:
    """The event-flow observer: the chunk's qualifying actions mark their referrals."""
    rules = referral_rules(program.revision)
    if not rules.is_active or not rules.qualifying_action:
        return
    window = timedelta(days=rules.qualify_days)
    candidates: dict[int, list[Event]] = {}
    for event in events:
        if event.action_code != rules.qualifying_action:
            continue
        # Only a member who joined within the window can have a referral to qualify: for the
        # others (most of them) nothing is read. The flow has the event's member at hand.
        if Event.member.is_cached(event) and event.occurred_at > event.member.joined_at + window:
            continue
        if qualifies(rules, event.attributes):
            candidates.setdefault(event.member_id, []).append(event)
    if not candidates:
        return
    # Most members have no open referral: one plain read (an index on the invited member)
    # says which do, before any row is built or locked.
    where, params = sql.any_of("invitee_id", list(candidates))
    open_for = [
        invitee_id
        for (invitee_id,) in sql.fetch(
            f"SELECT invitee_id FROM {Referral._meta.db_table} WHERE {where} "
            "AND state IN (%s, %s) AND qualifying_event_id IS NULL",
            [*params, *OPEN],
        )
    ]
    if not open_for:
        return
    now = timezone.now()
    for referral in Referral.objects.select_for_update().filter(
        sql.AnyOf("invitee_id", open_for), state__in=OPEN, qualifying_event__isnull=True
    ):
        within = [
            e for e in candidates[referral.invitee_id] if e.occurred_at <= referral.qualify_by
        ]
        if not within:
            continue
        referral.qualifying_event = min(within, key=lambda e: (e.occurred_at, e.pk))
        referral.qualified_at = now
        fields = ["qualifying_event", "qualified_at", "updated_at"]
        if referral.state == Referral.State.JOINED:
            referral.state = Referral.State.QUALIFIED
            fields.append("state")
            queue_after_commit_or_sweep("rewards.referral_reward", referral.pk)
        # A held referral keeps its qualifying event for the review: approving it rewards.
        referral.save(update_fields=fields)


def _keys(referral: Referral) -> tuple[str, str]:
    base = f"referral:{referral.pk}:{referral.qualifying_event_id}"
    return f"{base}:inviter", f"{base}:invitee"


def referral_reward(*, referral_id: int) -> Referral | None:
    """Credit both members of a qualified referral through the rules; safe to run twice."""
    with transaction.atomic():
        referral = (
            Referral.objects.select_for_update(of=("self",))
            .select_related("inviter", "invitee")
            .filter(pk=referral_id)
            .first()
        )
        if (
            referral is None
            or referral.state != Referral.State.QUALIFIED
            or referral.rewarded_at is not None
            or referral.qualifying_event_id is None
        ):
            return referral
        if referral.friend_number is None:
            # Numbered under the inviter's tally lock: the fifth friend is the fifth, however
            # many qualify at once.
            tally = InviterTally.locked(referral.inviter)
            tally.numbered += 1
            tally.qualified += 1
            tally.save(update_fields=["numbered", "qualified"])
            referral.friend_number = tally.numbered
            referral.save(update_fields=["friend_number", "updated_at"])
    if not {INVITER_ACTION, INVITEE_ACTION} <= compiled_program().actions.keys():
        referral_settings_changed()  # made again (an operator deleted one), compiled again
    inviter_key, invitee_key = _keys(referral)
    results = record_events(
        client=None,
        events=[
            EventInput(
                external_id=referral.inviter.external_id,
                action=INVITER_ACTION,
                idempotency_key=inviter_key,
                occurred_at=referral.qualified_at,
                attributes={
                    "friend": referral.invitee.external_id,
                    "friend_number": referral.friend_number,
                    "referral_id": referral.pk,
                },
            ),
            EventInput(
                external_id=referral.invitee.external_id,
                action=INVITEE_ACTION,
                idempotency_key=invitee_key,
                occurred_at=referral.qualified_at,
                attributes={"inviter": referral.inviter.external_id, "referral_id": referral.pk},
            ),
        ],
    )
    for item in results:
        if item.error is not None:
            raise item.error
    inviter_result, invitee_result = (item.result for item in results)
    now = timezone.now()
    with transaction.atomic():
        done = Referral.objects.filter(
            pk=referral.pk,
            state=Referral.State.QUALIFIED,
            rewarded_at__isnull=True,
            qualifying_event_id=referral.qualifying_event_id,
        ).update(
            inviter_event_id=inviter_result.event_id,
            invitee_event_id=invitee_result.event_id,
            rewarded_at=now,
            updated_at=now,
        )
        if done:
            referral.inviter_event_id = inviter_result.event_id
            referral.invitee_event_id = invitee_result.event_id
            referral.rewarded_at = referral.updated_at = now
            webhook_emit(
                work=None,
                type="referral.qualified",
                data={
                    "member": referral.invitee.external_id,
                    "inviter": referral.inviter.external_id,
                    "referral_id": referral.pk,
                    "friend_number": referral.friend_number,
                    "inviter_credited": _credited(inviter_result.outcome),
                    "member_credited": _credited(invitee_result.outcome),
                },
                member_id=referral.invitee_id,
            )
    if not done:
        referral.refresh_from_db()
        if referral.state != Referral.State.QUALIFIED:
            # Refunded or rejected while the credits were posted: they do not stand.
            referral_take_back(referral_id=referral.pk)
    return referral


def _credited(outcome: dict) -> dict[str, int]:
    return {"growth": outcome.get("growth", 0), "points": outcome.get("points", 0)}


def referrals_on_reversal(event: Event, fraction: Decimal) -> None:
    """The reversal observer: a qualifying order refunded (in full, or below the minimum
    amount) holds its referral for review and takes both credits back after commit."""
    referral = (
        Referral.objects.select_for_update()
        .filter(qualifying_event=event, state__in=(Referral.State.QUALIFIED, Referral.State.HELD))
        .first()
    )
    if referral is None:
        return
    rules = referral_rules()
    if fraction < 1 and rules.min_amount > 0:
        amount = as_decimal(read_attribute(event.attributes, rules.amount_attribute))
        if amount is not None and amount * (1 - fraction) >= rules.min_amount:
            return  # what is left of the order still qualifies
    referral.state = Referral.State.HELD
    referral.hold_reason = Referral.HoldReason.REFUNDED
    referral.hold_details = {"event_id": event.pk, "fraction_reversed": str(fraction)}
    referral.save(update_fields=["state", "hold_reason", "hold_details", "updated_at"])
    queue_after_commit_or_sweep("rewards.referral_take_back", referral.pk)


def referral_take_back(*, referral_id: int) -> int:
    """Reverse the credits of a referral that no longer stands (refunded, rejected); safe to
    run twice. Returns how many credits were reversed now."""
    referral = Referral.objects.filter(pk=referral_id).first()
    if referral is None or referral.state == Referral.State.QUALIFIED:
        return 0
    reversed_now = 0
    if referral.qualifying_event_id is not None:
        for key in _keys(referral):
            event = Event.objects.filter(client=None, idempotency_key=key).first()
            if event is None:
                continue
            try:
                result = event_reverse(
                    client=None, event_id=event.pk, idempotency_key=f"{key}:reverse"
                )
            except ReversalRefused:
                continue  # it credited nothing (a cap), or is reversed already
            reversed_now += 0 if result.replayed else 1
    with transaction.atomic():
        # The inviter's count of qualified friends drops once (it rose when the friend was
        # numbered, whether or not the credits were posted yet); numbered again if it
        # qualifies again.
        if (
            Referral.objects.filter(pk=referral.pk, friend_number__isnull=False)
            .exclude(state=Referral.State.QUALIFIED)
            .update(friend_number=None, rewarded_at=None, updated_at=timezone.now())
        ):
            InviterTally.objects.filter(member_id=referral.inviter_id, qualified__gt=0).update(
                qualified=F("qualified") - 1
            )
    return reversed_now


# How long a qualified referral may wait for its credits before the sweep queues them again.
REWARD_GRACE = timedelta(minutes=10)


def referrals_sweep() -> dict[str, int]:
    """Expire the referrals whose window passed unqualified; post the credits of qualified
    ones that wait too long, and take back those of referrals that no longer stand, where a
    task was lost (a broker down, a worker dead between commit and the task)."""
    now = timezone.now()
    expired = 0
    due = Referral.objects.filter(
        state__in=OPEN, qualifying_event__isnull=True, qualify_by__lt=now
    ).values_list("pk", flat=True)
    for pk in list(due[:10_000]):
        with transaction.atomic():
            referral = (
                Referral.objects.select_for_update(of=("self",))
                .select_related("inviter", "invitee")
                .filter(pk=pk, state__in=OPEN, qualifying_event__isnull=True)
                .first()
            )
            if referral is None:
                continue
            referral.state = Referral.State.EXPIRED
            referral.save(update_fields=["state", "updated_at"])
            referral_rejected_emit(referral, reason="expired")
            expired += 1
    taken_back = 0
    # Credits of referrals that no longer stand, not yet taken back (a lost task).
    for pk in (
        Referral.objects.filter(friend_number__isnull=False)
        .exclude(state=Referral.State.QUALIFIED)
        .values_list("pk", flat=True)[:10_000]
    ):
        referral_take_back(referral_id=pk)
        taken_back += 1
    requeued = 0
    for pk in Referral.objects.filter(
        state=Referral.State.QUALIFIED,
        rewarded_at__isnull=True,
        qualified_at__lt=now - REWARD_GRACE,
    ).values_list("pk", flat=True)[:10_000]:
        try:
            referral_reward(referral_id=pk)
            requeued += 1
        except DomainError:
            log.warning("referral %s could not be credited", pk, exc_info=True)
    return {"expired": expired, "rewarded": requeued, "taken_back": taken_back}


def referral_rejected_emit(referral: Referral, *, reason: str) -> None:
    webhook_emit(
        work=None,
        type="referral.rejected",
        data={
            "member": referral.invitee.external_id,
            "inviter": referral.inviter.external_id,
            "referral_id": referral.pk,
            "reason": reason,
        },
        member_id=referral.invitee_id,
    )
