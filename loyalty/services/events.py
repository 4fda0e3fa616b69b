"""Recording events: the flow that turns what members do into growth, points and tiers.

One event is one transaction: store the event (a repeated idempotency key returns the stored
outcome), lock the member's standing, evaluate the action's rules against the counters behind
caps and cooldowns, post ledger entries, bump counters, then check the tier.
"""

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from accounts.errors import Conflict, DomainError, MemberNotFound
from accounts.models import ApiClient, Member
from loyalty.models import (
    Currency,
    EntryKind,
    Event,
    MemberStanding,
    Program,
    RuleCounter,
    SourceType,
)
from loyalty.periods import period_start
from loyalty.rules import NO_MULTIPLIERS, CompiledRule, Skip
from loyalty.services.activity import activity_on_event_locked, gift_grant_locked
from loyalty.services.gamification import on_event
from loyalty.services.leaderboards import leaderboards_record_action
from loyalty.services.ledger import Movement, bucket_deltas, ledger_post
from loyalty.services.locks import lock_standing
from loyalty.services.lots import lots_open
from loyalty.services.program import CompiledProgram, compiled_program
from loyalty.services.tiers import TierMove, tier_upgrade_if_qualified


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    message = "This idempotency key was already used with a different request."


@dataclass(frozen=True)
class EventInput:
    external_id: str
    action: str
    idempotency_key: str
    occurred_at: datetime | None = None
    attributes: dict[str, Any] = field(default_factory=dict)

    def request_hash(self) -> str:
        canonical = json.dumps(
            {
                "external_id": self.external_id,
                "action": self.action,
                "occurred_at": self.occurred_at.isoformat() if self.occurred_at else None,
                "attributes": self.attributes,
            },
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class EventResult:
    event_id: int | None
    outcome: dict[str, Any]
    replayed: bool = False
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "replayed": self.replayed,
            "dry_run": self.dry_run,
            **self.outcome,
        }


class _DryRunDone(Exception):
    def __init__(self, result: EventResult) -> None:
        self.result = result


# --- Entry points -----------------------------------------------------------------------------


def record_event(
    *, client: ApiClient | None, event: EventInput, dry_run: bool = False
) -> EventResult:
    """Record one event and credit what its rules earn; safe to retry with the same key.

    A retry with the same idempotency key and body returns the stored outcome (``replayed``);
    the same key with another body raises ``IdempotencyConflict``. With ``dry_run`` the same
    evaluation runs and is rolled back: nothing is stored.
    """
    request_hash = event.request_hash()
    if not dry_run and (stored := _stored_result(client, event, request_hash)):
        return stored
    program = compiled_program()
    try:
        with transaction.atomic():
            result = _record(client, event, request_hash, program, dry_run)
            if dry_run:
                raise _DryRunDone(result)
    except _DryRunDone as done:
        return done.result
    except IntegrityError:
        # A concurrent request with the same key won the insert: answer as its retry.
        if stored := _stored_result(client, event, request_hash):
            return stored
        raise
    return result


@dataclass(frozen=True)
class BatchItemResult:
    index: int
    result: EventResult | None = None
    error: DomainError | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            error = {
                "code": self.error.code,
                "message": self.error.message,
                "details": self.error.details,
            }
            return {"index": self.index, "ok": False, "error": error}
        return {"index": self.index, "ok": True, "outcome": self.result.as_dict()}


def record_events(
    *,
    client: ApiClient | None,
    events: Sequence[EventInput | DomainError],
    dry_run: bool = False,
) -> list[BatchItemResult]:
    """Record a batch: each item on its own, so one bad item does not sink the others.

    Items are processed in member order (locks are always taken in the same order) and the
    results come back in the order posted. An item given as a ``DomainError`` (it failed
    validation) is reported as such.
    """
    results: dict[int, BatchItemResult] = {}
    valid = []
    for index, item in enumerate(events):
        if isinstance(item, DomainError):
            results[index] = BatchItemResult(index=index, error=item)
        else:
            valid.append((index, item))
    valid.sort(key=lambda pair: (pair[1].external_id, pair[0]))
    for index, item in valid:
        try:
            results[index] = BatchItemResult(
                index=index, result=record_event(client=client, event=item, dry_run=dry_run)
            )
        except DomainError as error:
            results[index] = BatchItemResult(index=index, error=error)
    return [results[index] for index in range(len(events))]


# --- The flow ---------------------------------------------------------------------------------


def _stored_result(
    client: ApiClient | None, event: EventInput, request_hash: str
) -> EventResult | None:
    stored = (
        Event.objects.filter(client=client, idempotency_key=event.idempotency_key)
        .only("pk", "request_hash", "outcome")
        .first()
    )
    if stored is None:
        return None
    if stored.request_hash != request_hash:
        raise IdempotencyConflict(details={"idempotency_key": event.idempotency_key})
    return EventResult(event_id=stored.pk, outcome=stored.outcome, replayed=True)


def _resolve_member(external_id: str, program: CompiledProgram) -> Member:
    member = Member.objects.filter(external_id=external_id).first()
    if member is not None:
        return member
    if program.unknown_members == Program.UnknownMembers.REFUSE:
        raise MemberNotFound(details={"external_id": external_id})
    member, _ = Member.objects.get_or_create(external_id=external_id)
    return member


@dataclass
class _Credit:
    rule: CompiledRule
    growth: int
    points: int
    capped: bool


def _record(
    client: ApiClient | None,
    event: EventInput,
    request_hash: str,
    program: CompiledProgram,
    dry_run: bool,
) -> EventResult:
    member = _resolve_member(event.external_id, program)
    standing = lock_standing(member.pk)
    if not dry_run and (stored := _stored_result(client, event, request_hash)):
        return stored  # a concurrent retry committed while we waited for the lock
    now = timezone.now()
    occurred_at = event.occurred_at or now
    action = program.actions.get(event.action)

    credits: list[_Credit] = []
    skipped: list[dict[str, Any]] = []
    counters: dict[tuple[int, str, Any], RuleCounter] = {}
    reason = ""
    if action is None:
        reason = "unknown_action"
    elif not action.is_active:
        reason = "rule_inactive"
    else:
        rules = program.rules_by_action.get(action.code, ())
        counters = _load_counters(member.pk, rules, occurred_at)
        credits, skipped = _evaluate(rules, program, standing, member, event, occurred_at, counters)
        if not rules:
            reason = "no_rule"
    growth = sum(c.growth for c in credits)
    points = sum(c.points for c in credits)
    if not (growth or points) and not reason:
        reason = skipped[0]["reason"] if skipped else "nothing_to_credit"

    tier_move = None
    if growth or standing.tier_id is None:
        tier_move = tier_upgrade_if_qualified(
            standing=standing, program=program, at=now, pending_growth=[(occurred_at, growth)]
        )
    played: dict[str, Any] = {"badges_awarded": [], "quests_completed": [], "streaks": []}
    gifts = []
    if standing.events_count == 0 and (
        welcome := gift_grant_locked(standing=standing, kind="welcome", occasion="welcome")
    ):
        gifts.append({"kind": welcome.kind, "points": welcome.points, "growth": welcome.growth})
    activity_change = None
    if action is not None and action.is_active:
        activity_change = activity_on_event_locked(
            standing=standing, member=member, action_id=action.pk, occurred_at=occurred_at
        )
        if activity_change == "returned":
            gifts.append({"kind": "return"})
        # Growth this event credits counts for badges: add it before evaluating them.
        standing.growth += growth
        played, bonus_move = on_event(
            standing=standing,
            action_id=action.pk,
            occurred_at=occurred_at,
            growth=growth,
            tier_changed=tier_move is not None,
            program=program,
        )
        standing.growth -= growth
        leaderboards_record_action(
            member_id=member.pk,
            action_id=action.pk,
            occurred_at=occurred_at,
            delta=1,
            boards=program.leaderboards,
        )
        if bonus_move is not None:
            first = tier_move or bonus_move
            tier_move = TierMove(
                from_tier=first.from_tier, to_tier=bonus_move.to_tier, reason=bonus_move.reason
            )
    movements = [
        Movement(
            currency=currency,
            kind=EntryKind.EARN,
            amount=amount,
            # Points under a hold period wait in the pending bucket until they activate.
            pending=currency == Currency.POINTS and credit.rule.hold_days > 0,
            source_type=SourceType.EVENT,
            rule_version_id=credit.rule.version_id,
            effective_at=occurred_at,
        )
        for credit in credits
        for currency, amount in ((Currency.GROWTH, credit.growth), (Currency.POINTS, credit.points))
        if amount
    ]
    rules_by_version = {credit.rule.version_id: credit.rule for credit in credits}
    after = bucket_deltas((m.currency, m.kind, m.pending, m.amount) for m in movements)
    outcome = {
        "member": member.external_id,
        "action": event.action,
        "idempotency_key": event.idempotency_key,
        "occurred_at": occurred_at.isoformat(),
        "status": (
            Event.Status.CREDITED if (growth or points) else Event.Status.NOT_CREDITED
        ).value,
        "reason": reason or None,
        "growth": growth,
        "points": points,
        "credits": [
            {
                "rule": c.rule.code,
                "rule_version": c.rule.version,
                "growth": c.growth,
                "points": c.points,
                "capped": c.capped,
            }
            for c in credits
        ],
        "skipped": skipped,
        "tier_change": tier_move.as_dict() if tier_move else None,
        **played,
        "gifts": gifts,
        "activity": activity_change,
        "tier": program.tier(standing.tier_id).code if standing.tier_id else None,
        "balances": {
            "growth": standing.growth + after["growth"],
            "points": standing.points + after["points"],
            "points_pending": standing.points_pending + after["points_pending"],
        },
    }
    stored_event = Event.objects.create(
        client=client,
        idempotency_key=event.idempotency_key,
        request_hash=request_hash,
        member=member,
        action=action,
        action_code=event.action,
        occurred_at=occurred_at,
        attributes=event.attributes,
        status=outcome["status"],
        reason=reason,
        growth=growth,
        points=points,
        outcome=outcome,
    )
    entries = ledger_post(
        standing=standing,
        movements=[
            replace(m, event_id=stored_event.pk, source_id=str(stored_event.pk)) for m in movements
        ],
        touch={
            "events_count": F("events_count") + 1,
            "last_event_at": Greatest(
                Coalesce(F("last_event_at"), Value(occurred_at)), Value(occurred_at)
            ),
        },
    )
    lots_open(
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
    _save_counters(counters)
    return EventResult(
        event_id=None if dry_run else stored_event.pk, outcome=outcome, dry_run=dry_run
    )


def _load_counters(
    member_id: int, rules: Sequence[CompiledRule], at: datetime
) -> dict[tuple[int, str, Any], RuleCounter]:
    """The member's counters for the periods holding ``at``, for every rule that keeps some;
    missing ones start at zero (and are inserted by ``_save_counters`` if used)."""
    wanted = {
        (rule.rule_id, period, period_start(period, at))
        for rule in rules
        for period in rule.counted_periods
    }
    if not wanted:
        return {}
    query = Q()
    for rule_id, period, start in wanted:
        query |= Q(rule_id=rule_id, period=period, period_start=start)
    counters = {
        (c.rule_id, c.period, c.period_start): c
        for c in RuleCounter.objects.filter(query, member_id=member_id)
    }
    for key in wanted - counters.keys():
        rule_id, period, start = key
        counters[key] = RuleCounter(
            member_id=member_id, rule_id=rule_id, period=period, period_start=start
        )
    return counters


def _save_counters(counters: dict[tuple[int, str, Any], RuleCounter]) -> None:
    changed = [c for c in counters.values() if getattr(c, "_changed", False)]
    if changed:
        # We hold the member's lock, so the totals computed in memory are exact.
        RuleCounter.objects.bulk_create(
            changed,
            update_conflicts=True,
            unique_fields=["member", "rule", "period", "period_start"],
            update_fields=["occurrences", "points", "growth", "last_credited_at"],
        )


def _evaluate(
    rules: Sequence[CompiledRule],
    program: CompiledProgram,
    standing: MemberStanding,
    member: Member,
    event: EventInput,
    occurred_at: datetime,
    counters: dict[tuple[int, str, Any], RuleCounter],
) -> tuple[list[_Credit], list[dict[str, Any]]]:
    """Run the action's rules in priority order; see docs/rules.md for how they stack."""
    tier = program.tier(standing.tier_id)
    multipliers = tier.multipliers if tier else NO_MULTIPLIERS
    credits: list[_Credit] = []
    skipped: list[dict[str, Any]] = []
    stopped_by: CompiledRule | None = None
    for rule in rules:
        try:
            if stopped_by is not None:
                raise Skip("stopped_by_rule", f"Rule {stopped_by.code} stops further rules.")
            rule.check_applies(
                occurred_at=occurred_at,
                member_joined_at=member.joined_at,
                attributes=event.attributes,
            )
            own = {
                period: counters[(rule.rule_id, period, period_start(period, occurred_at))]
                for period in rule.counted_periods
            }
            _check_cooldown(rule, own.get("lifetime"), occurred_at)
            growth, points = rule.amounts(attributes=event.attributes, multipliers=multipliers)
            growth, points, capped = _apply_caps(rule, own, growth, points)
        except Skip as skip:
            skipped.append(
                {
                    "rule": rule.code,
                    "rule_version": rule.version,
                    "reason": skip.reason,
                    "detail": skip.detail,
                }
            )
            continue
        for counter in own.values():
            counter.occurrences += 1
            counter.growth += growth
            counter.points += points
            if counter.last_credited_at is None or occurred_at > counter.last_credited_at:
                counter.last_credited_at = occurred_at
            counter._changed = True
        credits.append(_Credit(rule=rule, growth=growth, points=points, capped=capped))
        if rule.stop_further_rules:
            stopped_by = rule
    return credits, skipped


def _check_cooldown(rule: CompiledRule, lifetime: RuleCounter | None, at: datetime) -> None:
    if not rule.cooldown or lifetime is None or lifetime.last_credited_at is None:
        return
    if abs(at - lifetime.last_credited_at) < rule.cooldown:
        ready = lifetime.last_credited_at + rule.cooldown
        raise Skip("cooldown", f"Credited again from {ready.isoformat()}.")


def _apply_caps(
    rule: CompiledRule, own: dict[str, RuleCounter], growth: int, points: int
) -> tuple[int, int, bool]:
    """Refuse when an occurrence cap is full; clip amounts to what amount caps leave."""
    capped = False
    for cap in rule.caps:
        counter = own[cap.period]
        if cap.measure == "occurrences":
            if counter.occurrences >= cap.limit:
                raise Skip("cap_reached", f"At most {cap.limit} per {cap.period}.")
            continue
        used = counter.points if cap.measure == "points" else counter.growth
        left = max(cap.limit - used, 0)
        wanted = points if cap.measure == "points" else growth
        if wanted > left:
            capped = True
            if cap.measure == "points":
                points = left
            else:
                growth = left
    if capped and not (growth or points):
        raise Skip("cap_reached", "The rule's caps for this period are used up.")
    return growth, points, capped
