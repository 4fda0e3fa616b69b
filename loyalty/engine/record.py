"""One event's steps, under its member's lock, inside the chunk's unit of work: evaluate the
rules, then tiers, the welcome gift, activity, streaks, quests and badges, the action boards, the
event row and its ledger entries and lots; the answer the host app gets."""

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from django.utils import timezone

from accounts.models import ApiClient, Member
from core import sql
from loyalty.activity.states import activity_on_event_locked, activity_row, gift_grant_locked
from loyalty.engine.evaluate import Credit, MemberFacts, evaluate_rules, rule_counters
from loyalty.engine.inputs import EventInput
from loyalty.gamification.play import on_event
from loyalty.ledger.entries import Movement, ledger_post
from loyalty.ledger.lots import lots_open
from loyalty.models import (
    Currency,
    EntryKind,
    Event,
    MemberStanding,
    RuleCounter,
    SourceType,
)
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.program.compiled import CompiledProgram
from loyalty.scores.counting import leaderboards_record_action
from loyalty.tiers.moves import TierMove, tier_upgrade_if_qualified


@dataclass
class Item:
    index: int
    event: EventInput
    request_hash: str
    member: Member | None = None
    stored: Event | None = None  # the event recorded for it (new, or the one it repeats)
    outcome: dict[str, Any] | None = None
    replayed: bool = False


@dataclass
class Evaluated:
    """What the action's rules credit an event, and why not where they do not."""

    credits: list[Credit]
    skipped: list[dict[str, Any]]
    counters: dict[tuple[int, str, Any], RuleCounter]
    reason: str
    growth: int
    points: int


def record_one(
    client: ApiClient | None,
    item: Item,
    standing: MemberStanding,
    program: CompiledProgram,
    work: UnitOfWork,
) -> tuple[Event, dict[str, Any]]:
    """One event's steps, in order, under the member's lock; its rows are written by ``work``."""
    event, member = item.event, item.member
    now = timezone.now()
    bonuses_from, owed_before = len(work.bonuses), standing.points_owed
    occurred_at = event.occurred_at or now
    action = program.actions.get(event.action)
    active = action is not None and action.is_active

    evaluated = _evaluate(work, program, standing, member, event, action, occurred_at)
    tier_move = None
    if evaluated.growth or standing.tier_id is None:
        tier_move = tier_upgrade_if_qualified(
            work=work,
            standing=standing,
            program=program,
            at=now,
            pending_growth=[(occurred_at, evaluated.growth)],
        )
    gifts = _welcome_gift(work, standing, occurred_at)
    played: dict[str, Any] = {"badges_awarded": [], "quests_completed": [], "streaks": []}
    activity_change = None
    if active:
        activity_change = activity_on_event_locked(
            work=work,
            standing=standing,
            member=member,
            action_id=action.pk,
            occurred_at=occurred_at,
        )
        if activity_change == "returned":
            gifts.append({"kind": "return"})
        # Read only if a quest kept for a segment asks: the member as the event finds them.
        facts = MemberFacts(
            work=work,
            program=program,
            standing=standing,
            member=member,
            action_id=action.pk,
            occurred_at=occurred_at,
        )
        played, tier_move = _play(
            work,
            standing,
            program,
            action.pk,
            occurred_at,
            evaluated.growth,
            tier_move,
            returned_on=lambda: activity_row(work, member).returned_on,
            segments=lambda: facts["segments"],
        )
    # Everything the event credited: its rules' credits and the bonuses they set off.
    outcome = _answer(
        event,
        member,
        occurred_at,
        evaluated,
        work.bonuses[bonuses_from:],
        {
            "tier_change": tier_move.as_dict() if tier_move else None,
            **played,
            "gifts": gifts,
            "activity": activity_change,
            "tier": program.tier(standing.tier_id).code if standing.tier_id else None,
        },
        program.version,
    )
    stored_event = _event_row(work, client, item, standing, action, occurred_at, outcome)
    _post_credits(work, standing, program, stored_event, evaluated.credits, occurred_at)
    outcome["shortfall_repaid"] = owed_before - standing.points_owed
    outcome["balances"] = {
        "growth": standing.growth,
        "points": standing.points,
        "points_pending": standing.points_pending,
    }
    for counter in evaluated.counters.values():
        if getattr(counter, "_changed", False):
            work.changed(counter)
    return stored_event, outcome


def _evaluate(
    work: UnitOfWork,
    program: CompiledProgram,
    standing: MemberStanding,
    member: Member,
    event: EventInput,
    action: Any,
    occurred_at: datetime,
) -> Evaluated:
    """The action's rules against the member's counters (``engine.evaluate``)."""
    credits: list[Credit] = []
    skipped: list[dict[str, Any]] = []
    counters: dict[tuple[int, str, Any], RuleCounter] = {}
    reason = ""
    if action is None:
        reason = "unknown_action"
    elif not action.is_active:
        reason = "rule_inactive"
    else:
        rules = program.rules_by_action.get(action.code, ())
        counters = rule_counters(work, member.pk, rules, occurred_at)
        credits, skipped = evaluate_rules(
            work, rules, program, standing, member, event, occurred_at, counters
        )
        if not rules:
            reason = "no_rule"
    growth = sum(c.growth for c in credits)
    points = sum(c.points for c in credits)
    if not (growth or points) and not reason:
        reason = skipped[0]["reason"] if skipped else "nothing_to_credit"
    return Evaluated(credits, skipped, counters, reason, growth, points)


def _welcome_gift(
    work: UnitOfWork, standing: MemberStanding, occurred_at: datetime
) -> list[dict[str, Any]]:
    """The welcome gift on a member's first event, as the answer lists it."""
    if standing.events_count == 0 and (
        welcome := gift_grant_locked(
            work=work, standing=standing, kind="welcome", occasion="welcome", at=occurred_at
        )
    ):
        return [{"kind": welcome.kind, "points": welcome.points, "growth": welcome.growth}]
    return []


def _play(
    work: UnitOfWork,
    standing: MemberStanding,
    program: CompiledProgram,
    action_id: int,
    occurred_at: datetime,
    growth: int,
    tier_move: TierMove | None,
    returned_on: Callable[[], date | None],
    segments: Callable[[], Collection[str]],
) -> tuple[dict[str, Any], TierMove | None]:
    """Tallies, streaks, quests and badges (the growth this event credits counts for them),
    the action boards; the tier move, followed by one a bonus set off."""
    standing.growth += growth
    played, bonus_move = on_event(
        work=work,
        standing=standing,
        action_id=action_id,
        occurred_at=occurred_at,
        growth=growth,
        tier_changed=tier_move is not None,
        program=program,
        returned_on=returned_on,
        segments=segments,
    )
    standing.growth -= growth
    leaderboards_record_action(
        work=work,
        member_id=standing.pk,
        action_id=action_id,
        occurred_at=occurred_at,
        delta=1,
        boards=program.leaderboards,
    )
    if bonus_move is not None:
        first = tier_move or bonus_move
        tier_move = TierMove(
            from_tier=first.from_tier, to_tier=bonus_move.to_tier, reason=bonus_move.reason
        )
    return played, tier_move


def _answer(
    event: EventInput,
    member: Member,
    occurred_at: datetime,
    evaluated: Evaluated,
    bonuses: list[dict[str, Any]],
    played: dict[str, Any],
    program_version: int,
) -> dict[str, Any]:
    """The event's outcome as the host app gets it (its balances are set once posted)."""
    growth, points = evaluated.growth, evaluated.points
    return {
        "member": member.external_id,
        "action": event.action,
        "idempotency_key": event.idempotency_key,
        "occurred_at": occurred_at.isoformat(),
        "status": (
            Event.Status.CREDITED if (growth or points) else Event.Status.NOT_CREDITED
        ).value,
        "reason": evaluated.reason or None,
        "growth": growth + sum(bonus["growth"] for bonus in bonuses),
        "points": points + sum(bonus["points"] for bonus in bonuses),
        "program_version": program_version,
        "credits": [
            {
                "rule": c.rule.code,
                "rule_version": c.rule.version,
                "growth": c.growth,
                "points": c.points,
                "capped": c.capped,
            }
            for c in evaluated.credits
        ],
        "bonuses": bonuses,
        "skipped": evaluated.skipped,
        **played,
        # Set once the credits are posted (they may first repay what is owed).
        "shortfall_repaid": 0,
        "balances": {},
    }


def _event_row(
    work: UnitOfWork,
    client: ApiClient | None,
    item: Item,
    standing: MemberStanding,
    action: Any,
    occurred_at: datetime,
    outcome: dict[str, Any],
) -> Event:
    """The event as stored, with its outcome; counted on the member's standing."""
    event = item.event
    stored_event = sql.new_row(
        Event,
        client=client,
        idempotency_key=event.idempotency_key,
        request_hash=item.request_hash,
        member=item.member,
        action=action,
        action_code=event.action,
        occurred_at=occurred_at,
        attributes=event.attributes,
        status=outcome["status"],
        reason=outcome["reason"] or "",
        growth=outcome["growth"],
        points=outcome["points"],
        outcome=outcome,
    )
    work.events.append(stored_event)
    standing.events_count += 1
    standing.last_event_at = max(standing.last_event_at or occurred_at, occurred_at)
    work.standing_changed(standing)
    return stored_event


def _post_credits(
    work: UnitOfWork,
    standing: MemberStanding,
    program: CompiledProgram,
    stored_event: Event,
    credits: list[Credit],
    occurred_at: datetime,
) -> None:
    """The credits' ledger entries (their source is the event, written by ``work``) and the
    lots of their points: held points wait in the pending bucket until they activate."""
    rules_by_version = {credit.rule.version_id: credit.rule for credit in credits}
    entries = ledger_post(
        work=work,
        standing=standing,
        movements=[
            Movement(
                currency=currency,
                kind=EntryKind.EARN,
                amount=amount,
                pending=currency == Currency.POINTS and credit.rule.hold_days > 0,
                source_type=SourceType.EVENT,
                event=stored_event,
                source=stored_event,
                rule_version_id=credit.rule.version_id,
                effective_at=occurred_at,
            )
            for credit in credits
            for currency, amount in (
                (Currency.GROWTH, credit.growth),
                (Currency.POINTS, credit.points),
            )
            if amount
        ],
    )
    lots_open(
        work=work,
        standing=standing,
        credits=[
            (
                entry,
                program.expiry_for(rules_by_version[entry.rule_version_id]).expires_at(occurred_at),
                occurred_at + timedelta(days=rules_by_version[entry.rule_version_id].hold_days),
            )
            for entry in entries
            if entry.currency == Currency.POINTS
        ],
    )
