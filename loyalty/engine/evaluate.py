"""The action's rules against the member's counters: conditions, cooldowns, caps and stacking
(docs/rules.md)."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from accounts.models import Member
from loyalty.engine.inputs import EventInput
from loyalty.models import (
    MemberStanding,
    RuleCounter,
)
from loyalty.periods import period_start
from loyalty.persistence.queries import rule_counters_of
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.program.compiled import CompiledProgram
from loyalty.program.rules import NO_MULTIPLIERS, CompiledRule, Skip


@dataclass
class Credit:
    rule: CompiledRule
    growth: int
    points: int
    capped: bool


def rule_counters(
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
                query=lambda ids: rule_counters_of(ids, work.period_floor),
                new=lambda key=key: RuleCounter(
                    member_id=key[0], rule_id=key[1], period=key[2], period_start=key[3]
                ),
            )
    return counters


def evaluate_rules(
    rules: Sequence[CompiledRule],
    program: CompiledProgram,
    standing: MemberStanding,
    member: Member,
    event: EventInput,
    occurred_at: datetime,
    counters: dict[tuple[int, str, Any], RuleCounter],
) -> tuple[list[Credit], list[dict[str, Any]]]:
    """Run the action's rules in priority order; see docs/rules.md for how they stack."""
    tier = program.tier(standing.tier_id)
    multipliers = tier.multipliers if tier else NO_MULTIPLIERS
    credits: list[Credit] = []
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
        credits.append(Credit(rule=rule, growth=growth, points=points, capped=capped))
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
