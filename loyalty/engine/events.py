"""Recording events: the flow that turns what members do into growth, points and tiers.

One event is one transaction: store the event (a repeated idempotency key returns the stored
outcome), lock the member's standing, evaluate the action's rules against the counters behind
caps and cooldowns, post ledger entries, bump counters, then check the tier.
"""

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from itertools import groupby
from typing import Any

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from accounts.errors import MemberNotFound
from accounts.models import ApiClient, Member
from core import sql
from core.errors import DomainError, InvalidInput
from core.idempotency import IdempotencyConflict, of_client
from loyalty.activity.states import activity_on_event_locked, gift_grant_locked
from loyalty.gamification.badges import on_event
from loyalty.ledger.entries import Movement, ledger_post
from loyalty.ledger.lots import lots_open
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
from loyalty.persistence.locks import lock_standings, lock_standings_of
from loyalty.persistence.unit_of_work import UnitOfWork, unit_of_work
from loyalty.program.compiled import CompiledProgram, program_at, program_snapshot
from loyalty.program.rules import NO_MULTIPLIERS, CompiledRule, Skip
from loyalty.scores.counting import leaderboards_record_action, store
from loyalty.tiers.moves import TierMove, tier_upgrade_if_qualified


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


# --- Entry points -----------------------------------------------------------------------------


def record_event(
    *, client: ApiClient | None, event: EventInput, dry_run: bool = False
) -> EventResult:
    """Record one event and credit what its rules earn; safe to retry with the same key.

    A retry with the same idempotency key and body returns the stored outcome (``replayed``);
    the same key with another body raises ``IdempotencyConflict``. With ``dry_run`` the same
    evaluation runs and is rolled back: nothing is stored.
    """
    (item,) = record_events(client=client, events=[event], dry_run=dry_run)
    if item.error is not None:
        raise item.error
    return item.result


@dataclass(frozen=True)
class BatchItemResult:
    index: int
    result: EventResult | None = None
    error: DomainError | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            error = {
                "code": self.error.code,
                "message": str(self.error.message),
                "details": self.error.details,
            }
            return {"index": self.index, "ok": False, "error": error}
        return {"index": self.index, "ok": True, "outcome": self.result.as_dict()}


@dataclass
class _Item:
    index: int
    event: EventInput
    request_hash: str
    member: Member | None = None
    stored: Event | None = None  # the event recorded for it (new, or the one it repeats)
    outcome: dict[str, Any] | None = None
    replayed: bool = False


def record_events(
    *,
    client: ApiClient | None,
    events: Sequence[EventInput | DomainError],
    dry_run: bool = False,
) -> list[BatchItemResult]:
    """Record a batch, each item judged on its own: one bad item does not sink the others,
    and every item's answer is what recording it alone would have given.

    Items are processed in member order and the results come back in the order posted. An item
    given as a ``DomainError`` (it failed validation) is reported as such. The items go in
    transactions of about ``CHUNK_EVENTS`` events, a member's events all in one: each locks its
    members at once, in primary-key order, reads the rows the flow touches once and writes them
    in bulk (``unit_of_work``). Locks are held for a chunk, not the whole batch, so concurrent
    batches sharing a member wait for one chunk of each other; a batch cut short (a crash, a
    non-domain error) is finished by posting it again, its recorded items answering as replays.
    """
    errors: dict[int, DomainError] = {}
    items: list[_Item] = []
    program = program_snapshot()
    for index, event in enumerate(events):
        if isinstance(event, DomainError):
            errors[index] = event
        elif refused := _refused_attribute(program, event):
            errors[index] = refused
        else:
            items.append(_Item(index=index, event=event, request_hash=event.request_hash()))
    found = dict(errors)
    _record_items(client, items, found, dry_run)
    recorded = {
        item.index: EventResult(
            event_id=None if dry_run else item.stored.pk,
            outcome=item.outcome,
            replayed=item.replayed,
            dry_run=dry_run,
        )
        for item in items
        if item.index not in found
    }
    return [
        BatchItemResult(index=index, error=found.get(index), result=recorded.get(index))
        for index in range(len(events))
    ]


class InvalidAttribute(InvalidInput):
    code = "invalid_attribute"


def _refused_attribute(program: CompiledProgram, event: EventInput) -> InvalidAttribute | None:
    """An event whose per-unit attribute (an amount) no rule of its action could use is refused
    before anything is read, locked or stored: it leaves nothing behind (no member created), and
    no arithmetic ever runs on an absurd number."""
    checked = set()
    for rule in program.rules_by_action.get(event.action, ()):
        if rule.unit_attribute in checked:
            continue  # several rules of an action read the same amount
        checked.add(rule.unit_attribute)
        if rule.refuses_attributes(event.attributes):
            return InvalidAttribute(
                rule.unit_problem,
                details={"attribute": rule.unit_attribute},
            )
    return None


def _record_items(
    client: ApiClient | None,
    items: list[_Item],
    errors: dict[int, DomainError],
    dry_run: bool,
) -> None:
    todo = sorted(
        (item for item in items if item.index not in errors),
        key=lambda item: (item.event.external_id, item.index),
    )
    repeats: list[tuple[_Item, _Item]] = []
    if not dry_run:
        if len(todo) > 1:
            # A retried batch is answered without taking locks. One event does not look
            # first: that would cost every new event a query to spare a retry one attempt.
            todo = _settle_stored(client, todo, errors)
        todo, repeats = _split_repeats(todo, errors)
    for chunk in _chunks(todo):
        _record_chunk(client, chunk, errors, dry_run)
    for item, first in repeats:
        if first.index in errors:
            errors[item.index] = errors[first.index]
        else:
            item.stored, item.outcome, item.replayed = first.stored, first.outcome, True


# A batch's items go in transactions of about this many events (a member's all in one).
CHUNK_EVENTS = 100


def _chunks(items: list[_Item]) -> Iterable[list[_Item]]:
    """The items (in member order) cut into chunks of about ``CHUNK_EVENTS``, never between two
    items of one member: their answers depend on each other."""
    chunk: list[_Item] = []
    for _, group in groupby(items, key=lambda item: item.event.external_id):
        member_items = list(group)
        if chunk and len(chunk) + len(member_items) > CHUNK_EVENTS:
            yield chunk
            chunk = []
        chunk += member_items
    if chunk:
        yield chunk


def _record_chunk(
    client: ApiClient | None,
    items: list[_Item],
    errors: dict[int, DomainError],
    dry_run: bool,
) -> None:
    for attempt in range(3):
        found: dict[int, DomainError] = {}
        # Where the database refuses a second event under a key, the first attempt does not
        # look for the keys under the locks: a retry of one of these that committed while we
        # waited makes the flush fail on the key, and the next attempt looks.
        probe = attempt > 0 or not _key_constraint_holds()
        try:
            _record_locked(client, items, found, dry_run, probe=probe)
        except IntegrityError:
            # Another request stored one of these idempotency keys first: the chunk was rolled
            # back; the next attempt answers that item as the replay or conflict it is.
            if attempt == 2:
                raise
            for item in items:
                item.stored, item.outcome, item.replayed = None, None, False
            continue
        errors.update(found)
        return


def _key_constraint_holds() -> bool:
    """Whether the database refuses a second event under a key: the constraint, with its NULLS
    NOT DISTINCT for client-less events, exists only where that is supported (not SQLite)."""
    return connection.features.supports_nulls_distinct_unique_constraints


def _record_locked(
    client: ApiClient | None,
    todo: list[_Item],
    errors: dict[int, DomainError],
    dry_run: bool,
    *,
    probe: bool,
) -> None:
    """Record the items in one transaction, under their members' locks; with ``probe``, look
    for their keys first."""
    try:
        with transaction.atomic():
            standings, members, program = _lock_known(todo)
            if probe and not dry_run:
                # A retry of one of these may have committed while we waited for the locks;
                # looked for before any member is created, so a refused item creates none.
                todo = _settle_stored(client, todo, errors)
            todo = _with_members(todo, _add_new_members(todo, members, standings, program), errors)
            with unit_of_work(
                standings,
                {item.member.pk: item.member.external_id for item in todo},
                since=min(
                    (item.event.occurred_at or timezone.now() for item in todo),
                    default=timezone.now(),
                ),
                add_scores=_add_scores,
            ) as work:
                for item in todo:
                    item.stored, item.outcome = _record(
                        client, item, standings[item.member.pk], program, work
                    )
                if dry_run:
                    raise _DryRunDone
                work.flush()
    except _DryRunDone:
        pass


def _add_scores(deltas, along) -> None:
    store().add(deltas, along=along)


class _DryRunDone(Exception):
    """Raised to roll a dry run back."""


def _settle_stored(
    client: ApiClient | None, items: list[_Item], errors: dict[int, DomainError]
) -> list[_Item]:
    """Answer the items whose key is already stored (a replay, or a conflict if the body
    differs); return the others."""
    stored = {
        event.idempotency_key: event
        for event in _stored_events(client, [item.event.idempotency_key for item in items])
    }
    left = []
    for item in items:
        event = stored.get(item.event.idempotency_key)
        if event is None:
            left.append(item)
        elif event.request_hash != item.request_hash:
            errors[item.index] = IdempotencyConflict(
                details={"idempotency_key": item.event.idempotency_key}
            )
        else:
            item.stored, item.outcome, item.replayed = event, event.outcome, True
    return left


def _stored_events(client: ApiClient | None, keys: list[str]) -> Iterable[Event]:
    """The client's events stored under any of ``keys``. On PostgreSQL one index probe per key
    on (client, key): looked up as a list, the planner may instead walk every event of the
    client and filter, whenever its statistics have not yet seen how many the client has."""
    if connection.vendor != "postgresql":
        return Event.objects.filter(client=client, idempotency_key__in=keys).only(
            "pk", "idempotency_key", "request_hash", "outcome"
        )
    # (OFFSET 0 keeps the subquery apart: joined flat, it is planned as the list was.)
    same_client, params = of_client(client)
    rows = sql.fetch(
        f"SELECT {sql.columns(Event, 'e')} FROM unnest(%s::text[]) AS k(key) CROSS JOIN LATERAL ("
        f"SELECT * FROM {Event._meta.db_table} WHERE {same_client} AND idempotency_key = k.key "
        "OFFSET 0) AS e",
        [keys, *params],
    )
    return sql.rows_to(Event, rows)


def _split_repeats(
    items: list[_Item], errors: dict[int, DomainError]
) -> tuple[list[_Item], list[tuple[_Item, _Item]]]:
    """The same key twice in one batch: the later item is the first's retry (answered with its
    outcome), or a conflict if its body differs. Returns the firsts and ``(retry, first)``."""
    firsts: dict[str, _Item] = {}
    repeats = []
    for item in items:
        first = firsts.setdefault(item.event.idempotency_key, item)
        if first is item:
            continue
        if item.request_hash != first.request_hash:
            errors[item.index] = IdempotencyConflict(
                details={"idempotency_key": item.event.idempotency_key}
            )
        else:
            repeats.append((item, first))
    return list(firsts.values()), repeats


def _lock_known(
    items: list[_Item],
) -> tuple[dict[int, MemberStanding], dict[str, Member], CompiledProgram]:
    """Lock the standings of the items' members who have one: one query (standings locked in
    primary-key order, members and the program's revision read beside them). Also the program
    to evaluate with, at its revision of that query."""
    standings, revision = lock_standings_of({item.event.external_id for item in items})
    members = {standing.member.external_id: standing.member for standing in standings.values()}
    return standings, members, program_at(revision)


def _add_new_members(
    items: list[_Item],
    members: dict[str, Member],
    standings: dict[int, MemberStanding],
    program: CompiledProgram,
) -> dict[str, Member]:
    """The items' other members: found, created if unknown and the program says so, their
    standings locked (``lock_standings``, added to ``standings``). Returns every member known."""
    if missing := {item.event.external_id for item in items} - members.keys():
        found = {m.external_id: m for m in Member.objects.filter(external_id__any=sorted(missing))}
        unknown = missing - found.keys()
        if unknown and program.unknown_members != Program.UnknownMembers.REFUSE:
            Member.objects.bulk_create(
                [Member(external_id=external_id) for external_id in sorted(unknown)],
                ignore_conflicts=True,
            )
            found.update(
                (m.external_id, m) for m in Member.objects.filter(external_id__any=sorted(unknown))
            )
        members.update(found)
        standings.update(lock_standings(m.pk for m in found.values()))
    return members


def _with_members(
    items: list[_Item], members: dict[str, Member], errors: dict[int, DomainError]
) -> list[_Item]:
    """The items whose member is known; the others are answered ``member_not_found``."""
    left = []
    for item in items:
        item.member = members.get(item.event.external_id)
        if item.member is None:
            errors[item.index] = MemberNotFound(details={"external_id": item.event.external_id})
        else:
            left.append(item)
    return left


# --- The flow ---------------------------------------------------------------------------------


@dataclass
class _Credit:
    rule: CompiledRule
    growth: int
    points: int
    capped: bool


def _record(
    client: ApiClient | None,
    item: _Item,
    standing: MemberStanding,
    program: CompiledProgram,
    work: UnitOfWork,
) -> tuple[Event, dict[str, Any]]:
    """One event's evaluation, under the member's lock; its rows are written by ``work``."""
    event, member = item.event, item.member
    now = timezone.now()
    bonuses_from, owed_before = len(work.bonuses), standing.points_owed
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
        counters = _counters(work, member.pk, rules, occurred_at)
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
        welcome := gift_grant_locked(
            standing=standing, kind="welcome", occasion="welcome", at=occurred_at
        )
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
    # What the credits post, as (currency, amount, pending, rule): the entries themselves are
    # made once the event row exists, since they point at it.
    earned = [
        # Points under a hold period wait in the pending bucket until they activate.
        (currency, amount, currency == Currency.POINTS and credit.rule.hold_days > 0, credit.rule)
        for credit in credits
        for currency, amount in ((Currency.GROWTH, credit.growth), (Currency.POINTS, credit.points))
        if amount
    ]
    rules_by_version = {credit.rule.version_id: credit.rule for credit in credits}
    # Everything the event credited: its rules' credits and the bonuses they set off.
    bonuses = work.bonuses[bonuses_from:]
    outcome = {
        "member": member.external_id,
        "action": event.action,
        "idempotency_key": event.idempotency_key,
        "occurred_at": occurred_at.isoformat(),
        "status": (
            Event.Status.CREDITED if (growth or points) else Event.Status.NOT_CREDITED
        ).value,
        "reason": reason or None,
        "growth": growth + sum(bonus["growth"] for bonus in bonuses),
        "points": points + sum(bonus["points"] for bonus in bonuses),
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
        "bonuses": bonuses,
        "skipped": skipped,
        "tier_change": tier_move.as_dict() if tier_move else None,
        **played,
        "gifts": gifts,
        "activity": activity_change,
        "tier": program.tier(standing.tier_id).code if standing.tier_id else None,
        # Set below, once the credits are posted (they may first repay what is owed).
        "shortfall_repaid": 0,
        "balances": {},
    }
    stored_event = sql.new_row(
        Event,
        client=client,
        idempotency_key=event.idempotency_key,
        request_hash=item.request_hash,
        member=member,
        action=action,
        action_code=event.action,
        occurred_at=occurred_at,
        attributes=event.attributes,
        status=outcome["status"],
        reason=reason,
        growth=outcome["growth"],
        points=outcome["points"],
        outcome=outcome,
    )
    work.events.append(stored_event)
    standing.events_count += 1
    standing.last_event_at = max(standing.last_event_at or occurred_at, occurred_at)
    work.touched.add(standing.pk)
    # The entries' source id is the event's, known once ``work`` has written it.
    entries = ledger_post(
        standing=standing,
        movements=[
            Movement(
                currency=currency,
                kind=EntryKind.EARN,
                amount=amount,
                pending=pending,
                source_type=SourceType.EVENT,
                event=stored_event,
                source=stored_event,
                rule_version_id=rule.version_id,
                effective_at=occurred_at,
            )
            for currency, amount, pending, rule in earned
        ],
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
    outcome["shortfall_repaid"] = owed_before - standing.points_owed
    outcome["balances"] = {
        "growth": standing.growth,
        "points": standing.points,
        "points_pending": standing.points_pending,
    }
    for counter in counters.values():
        if getattr(counter, "_changed", False):
            work.changed(counter)
    return stored_event, outcome


def _counters(
    work: UnitOfWork, member_id: int, rules: Sequence[CompiledRule], at: datetime
) -> dict[tuple[int, str, Any], RuleCounter]:
    """The member's counters for the periods holding ``at``, for every rule that keeps some;
    missing ones start at zero (and are written by ``work`` if used)."""
    counters = {}
    for rule in rules:
        for period in rule.counted_periods:
            key = (member_id, rule.rule_id, period, period_start(period, at))
            counters[key[1:]] = work.row(
                RuleCounter,
                key,
                index=lambda c: (c.member_id, c.rule_id, c.period, c.period_start),
                query=lambda ids: _counters_of(ids, work.period_floor),
                new=lambda key=key: RuleCounter(
                    member_id=key[0], rule_id=key[1], period=key[2], period_start=key[3]
                ),
            )
    return counters


def _counters_of(member_ids: list[int], floor: date) -> list[RuleCounter]:
    """The members' lifetime rule counters and those of periods starting from ``floor``."""
    members, params = sql.any_of("member_id", member_ids)
    return sql.select(
        RuleCounter,
        f"{members} AND (period = %s OR period_start >= %s)",
        [*params, "lifetime", floor],
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
