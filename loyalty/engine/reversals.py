"""Reversing an event in full or in part (a refund): take back growth and points in
proportion, correct the counters behind caps, never touch the tier (only the review may lower
it)."""

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import F, Sum, Value
from django.db.models.functions import Greatest
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiClient
from core.errors import BusinessRuleViolation, NotFound
from core.idempotency import idempotent_write, stored_write
from core.idempotency import request_hash as hash_request
from loyalty.engine.observers import event_reversed
from loyalty.gamification.play import on_reversal
from loyalty.ledger.entries import Movement, ledger_post
from loyalty.ledger.lots import lots_take
from loyalty.ledger.session import member_session
from loyalty.models import (
    Currency,
    EarningRuleVersion,
    EntryKind,
    Event,
    EventReversal,
    MemberStanding,
    PointLot,
    Program,
    RuleBudget,
    RuleCounter,
    SourceType,
)
from loyalty.periods import period_start
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.program.rules import CompiledRule, read_attribute
from loyalty.scores.counting import (
    leaderboards_record_action,
    leaderboards_record_shortfall,
)


class ReversalRefused(BusinessRuleViolation):
    code = "reversal_refused"


class EventNotFound(NotFound):
    code = "event_not_found"
    message = _("No such event for this client.")


@dataclass(frozen=True)
class ReversalResult:
    reversal_id: int
    outcome: dict[str, Any]
    replayed: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"reversal_id": self.reversal_id, "replayed": self.replayed, **self.outcome}


def _stored(client: ApiClient | None, key: str, request_hash: str) -> ReversalResult | None:
    stored = stored_write(EventReversal.objects, client=client, key=key, request_hash=request_hash)
    if stored is None:
        return None
    return ReversalResult(reversal_id=stored.pk, outcome=stored.outcome, replayed=True)


def event_reverse(
    *, client: ApiClient | None, event_id: int, idempotency_key: str, amount: Decimal | None = None
) -> ReversalResult:
    """Reverse the event fully, or by ``amount`` of its per-unit attribute (a partial refund).

    Takes back growth and points in proportion, cumulatively across partial reversals, so
    reversing everything in parts takes back exactly what was credited. Points still pending
    are voided first, then the event's own unspent points; points already spent follow the
    program's setting: a negative balance, or what is left plus a recorded shortfall that
    stays owed until the member's later credits repay it. Safe to retry with the same key; the
    same key with another amount is a conflict.
    """
    request_hash = hash_request(
        {"event": event_id, "amount": str(amount) if amount is not None else None}
    )
    return idempotent_write(
        lambda: _reverse(client, event_id, idempotency_key, amount, request_hash),
        stored=lambda: _stored(client, idempotency_key, request_hash),
    )


def _reverse(
    client: ApiClient | None, event_id: int, key: str, amount: Decimal | None, request_hash: str
) -> ReversalResult:
    event = Event.objects.filter(pk=event_id, client=client).first()
    if event is None:
        raise EventNotFound(details={"event_id": event_id})
    with member_session(event.member_id, since=event.occurred_at, savepoint=False) as session:
        standing, work = session.standing, session.work
        if stored := _stored(client, key, request_hash):
            return stored
        credited = _credited_by_version(event)
        if not credited:
            raise ReversalRefused("The event credited nothing.", code="nothing_to_reverse")
        rules = {version_id: _rule(version_id) for version_id in credited}
        previous = list(event.reversals.all())
        fraction = _cumulative_fraction(event, rules, previous, amount)

        targets: dict[str, dict[str, int]] = {}
        for version_id, amounts in credited.items():
            before = defaultdict(int)
            for reversal in previous:
                for currency, value in reversal.targets.get(str(version_id), {}).items():
                    before[currency] += value
            targets[str(version_id)] = {
                currency: _share(total, fraction) - before[currency]
                for currency, total in amounts.items()
            }
        growth = sum(t.get(Currency.GROWTH, 0) for t in targets.values())
        points = sum(t.get(Currency.POINTS, 0) for t in targets.values())

        program = session.program
        taken = _take_points(work, standing, event, points, program.reversal_shortfall)
        if growth:
            ledger_post(
                work=work,
                standing=standing,
                movements=[_reverse_movement(event, Currency.GROWTH, -growth)],
            )
        _correct_counters(event, rules, targets, full=fraction == 1)
        revoked = []
        if fraction == 1 and event.action_id:
            # The occurrence no longer counts: tallies, action leaderboards, and badges set to be
            # revoked after a reversal.
            leaderboards_record_action(
                work=work,
                member_id=event.member_id,
                action_id=event.action_id,
                occurred_at=event.occurred_at,
                delta=-1,
                boards=program.leaderboards,
            )
            revoked = on_reversal(
                work=work,
                standing=standing,
                action_id=event.action_id,
                occurred_at=event.occurred_at,
                program=program,
            )
        outcome = {
            "event_id": event.pk,
            "member": event.member.external_id,
            "amount": str(amount) if amount is not None else None,
            "fraction_reversed": str(fraction),
            "growth": growth,
            "points": taken["points"],
            "pending_voided": taken["pending"],
            "shortfall": taken["shortfall"],
            "badges_revoked": [award.badge.code for award in revoked],
            "balances": {
                "growth": standing.growth,
                "points": standing.points,
                "points_pending": standing.points_pending,
            },
        }
        reversal = EventReversal.objects.create(
            event=event,
            client=client,
            idempotency_key=key,
            request_hash=request_hash,
            amount=amount,
            fraction=fraction,
            targets=targets,
            outcome=outcome,
            shortfall=taken["shortfall"],
            shortfall_open=taken["shortfall"],
        )
        if taken["shortfall"]:
            # An open debt: the member's next credits repay it first (``lots``). The points
            # boards drop it now, as points taken back.
            standing.points_owed += taken["shortfall"]
            work.standing_changed(standing)
            leaderboards_record_shortfall(
                work=work,
                member_id=event.member_id,
                occurred_at=event.occurred_at,
                points=taken["shortfall"],
                boards=program.leaderboards,
            )
        event_reversed(event, fraction)
        return ReversalResult(reversal_id=reversal.pk, outcome=outcome)


def _credited_by_version(event: Event) -> dict[int, dict[str, int]]:
    rows = (
        event.entries.filter(kind=EntryKind.EARN)
        .values("rule_version_id", "currency")
        .annotate(total=Sum("amount"))
    )
    credited: dict[int, dict[str, int]] = defaultdict(dict)
    for row in rows:
        credited[row["rule_version_id"]][row["currency"]] = row["total"]
    return dict(credited)


def _rule(version_id: int) -> CompiledRule:
    version = EarningRuleVersion.objects.get(pk=version_id)
    return CompiledRule.from_definition(
        rule_id=version.rule_id,
        version_id=version.pk,
        version=version.version,
        definition=version.definition,
    )


def _cumulative_fraction(
    event: Event,
    rules: dict[int, CompiledRule],
    previous: list[EventReversal],
    amount: Decimal | None,
) -> Decimal:
    done = max((reversal.fraction for reversal in previous), default=Decimal(0))
    if done >= 1:
        raise ReversalRefused("The event is already fully reversed.", code="already_reversed")
    if amount is None:
        return Decimal(1)
    attribute = next((rule.unit_attribute for rule in rules.values() if rule.unit_attribute), "")
    base = read_attribute(event.attributes, attribute) if attribute else None
    try:
        base = Decimal(str(base)) if base is not None else None
    except ArithmeticError:
        base = None
    if not base or base <= 0:
        raise ReversalRefused(
            "Only events earned per unit of an amount can be reversed in part.",
            code="partial_not_possible",
        )
    refunded = sum((r.amount or Decimal(0) for r in previous), Decimal(0)) + amount
    if amount <= 0 or refunded > base:
        raise ReversalRefused(
            f"The amount must be positive and at most what is left to refund ({base - refunded + amount}).",
            code="amount_too_large",
            details={"event_amount": str(base), "refundable": str(base - refunded + amount)},
        )
    return min(refunded / base, Decimal(1)).quantize(Decimal("0.00000001"))


def _share(total: int, fraction: Decimal) -> int:
    return int((total * fraction).to_integral_value(rounding=ROUND_HALF_UP))


def _reverse_movement(
    event: Event, currency: str, amount: int, *, pending: bool = False
) -> Movement:
    # Dated at the event: what a reversal takes back leaves the leaderboard periods and tier
    # windows the event counted in, as its occurrence leaves the action boards.
    return Movement(
        currency=currency,
        kind=EntryKind.REVERSE,
        amount=amount,
        pending=pending,
        source_type=SourceType.REVERSAL,
        source_id=str(event.pk),
        event_id=event.pk,
        effective_at=event.occurred_at,
    )


def _take_points(
    work: UnitOfWork, standing: MemberStanding, event: Event, points: int, shortfall_policy: str
) -> dict[str, int]:
    """Void the event's pending points, then take its unspent points, then apply the
    program's policy to what was already spent."""
    result = {"points": 0, "pending": 0, "shortfall": 0}
    if points <= 0:
        return result
    lots = PointLot.objects.filter(event=event, remaining__gt=0)
    pending = min(points, lots.filter(pending=True).aggregate(s=Sum("remaining"))["s"] or 0)
    if pending:
        (entry,) = ledger_post(
            work=work,
            standing=standing,
            movements=[_reverse_movement(event, Currency.POINTS, -pending, pending=True)],
        )
        lots_take(
            work=work,
            member_id=standing.pk,
            amount=pending,
            entry=entry,
            pending=True,
            event_id=event.pk,
        )
    own = min(points - pending, lots.filter(pending=False).aggregate(s=Sum("remaining"))["s"] or 0)
    rest = points - pending - own
    if rest and shortfall_policy == Program.Shortfall.RECORD:
        available = max(standing.points - own, 0)
        result["shortfall"] = max(rest - available, 0)
        rest -= result["shortfall"]
    spendable = own + rest
    if spendable:
        (entry,) = ledger_post(
            work=work,
            standing=standing,
            movements=[_reverse_movement(event, Currency.POINTS, -spendable)],
        )
        lots_take(work=work, member_id=standing.pk, amount=own, entry=entry, event_id=event.pk)
        # Spent points: from the member's other lots (as far as they go; under the negative
        # balance policy the rest leaves the balance below zero).
        lots_take(work=work, member_id=standing.pk, amount=rest, entry=entry)
    result["points"] = spendable + pending
    result["pending"] = pending
    return result


def _correct_counters(
    event: Event, rules: dict[int, CompiledRule], targets: dict[str, dict[str, int]], *, full: bool
) -> None:
    """Give back to the caps and to a rule's total budget what the reversal took back; a full
    reversal also gives back the occurrence."""
    for version_id, rule in rules.items():
        taken = targets[str(version_id)]
        if rule.budget_points is not None and taken.get(Currency.POINTS, 0):
            RuleBudget.objects.filter(rule_id=rule.rule_id).update(
                spent=Greatest(F("spent") - taken[Currency.POINTS], Value(0))
            )
        for period in rule.counted_periods:
            RuleCounter.objects.filter(
                member_id=event.member_id,
                rule_id=rule.rule_id,
                period=period,
                period_start=period_start(period, event.occurred_at),
            ).update(
                occurrences=Greatest(F("occurrences") - (1 if full else 0), Value(0)),
                points=Greatest(F("points") - taken.get(Currency.POINTS, 0), Value(0)),
                growth=Greatest(F("growth") - taken.get(Currency.GROWTH, 0), Value(0)),
            )
