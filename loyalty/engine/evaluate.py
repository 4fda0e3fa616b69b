"""The action's rules against the member's counters: conditions, cooldowns, caps and stacking
(docs/rules.md)."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import F

from accounts.models import Member
from loyalty.activity.states import activity_row
from loyalty.engine.inputs import EventInput
from loyalty.gamification.tallies import tally_row
from loyalty.models import (
    MemberStanding,
    RuleBudget,
    RuleCounter,
)
from loyalty.periods import local_date, period_start
from loyalty.persistence.queries import rule_counters_of
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.program.compiled import CompiledProgram
from loyalty.program.rules import MEMBER, NO_MULTIPLIERS, CompiledRule, Skip
from loyalty.segments.inflow import segments_of


class MemberFacts(Mapping):
    """What ``member.…`` conditions read (docs/rules.md), each computed on first use from the
    rows the flow holds or loads once per chunk: no query per condition or per segment."""

    KEYS = (
        "tier",
        "state",
        "points",
        "growth",
        "points_earned",
        "points_spent",
        "events",
        "joined",
        "days_since_joined",
        "last_key_day",
        "days_away",
        "occurrence",
        "attributes",
        "segments",
    )

    def __init__(self, *, work, program, standing, member, action_id, occurred_at):
        self._work, self._program, self._standing, self._member = work, program, standing, member
        self._action_id, self._at = action_id, occurred_at
        self._known: dict[str, Any] = {}

    def __getitem__(self, key: str) -> Any:
        if key not in self._known:
            if key not in self.KEYS:
                raise KeyError(key)
            self._known[key] = getattr(self, f"_{key}")()
        return self._known[key]

    def __iter__(self):
        return iter(self.KEYS)

    def __len__(self) -> int:
        return len(self.KEYS)

    def _tier(self):
        tier = self._program.tier(self._standing.tier_id)
        return tier.code if tier else None

    def _state(self):
        return activity_row(self._work, self._member).state

    def _points(self):
        return self._standing.points

    def _growth(self):
        return self._standing.growth

    def _points_earned(self):
        return self._standing.points_earned

    def _points_spent(self):
        return self._standing.points_spent

    def _events(self):
        return self._standing.events_count

    def _joined(self):
        return local_date(self._member.joined_at)

    def _days_since_joined(self):
        return (local_date(self._at) - self["joined"]).days

    def _last_key_day(self):
        return activity_row(self._work, self._member).last_key_day

    def _days_away(self):
        return (local_date(self._at) - (self["last_key_day"] or self["joined"])).days

    def _occurrence(self):
        """This event's place among the member's occurrences of its action (1: the first)."""
        return tally_row(self._work, self._member.pk, self._action_id).count + 1

    def _attributes(self):
        return self._member.attributes or {}

    def _segments(self):
        return segments_of(self._program.segments, self, local_date(self._at))


class EventAndMember(Mapping):
    """The event's attributes, with ``member`` standing for the member's facts."""

    def __init__(self, attributes: Mapping[str, Any], facts: MemberFacts):
        self._attributes, self._facts = attributes, facts

    def __getitem__(self, key: str) -> Any:
        return self._facts if key == MEMBER else self._attributes[key]

    def __iter__(self):
        return iter({*self._attributes, MEMBER})

    def __len__(self) -> int:
        return len({*self._attributes, MEMBER})


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
    work: UnitOfWork,
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
    attributes = event.attributes
    if any(rule.uses_member for rule in rules):
        facts = MemberFacts(
            work=work,
            program=program,
            standing=standing,
            member=member,
            action_id=program.actions[event.action].pk,
            occurred_at=occurred_at,
        )
        attributes = EventAndMember(event.attributes, facts)
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
                attributes=attributes,
            )
            own = {
                period: counters[(rule.rule_id, period, period_start(period, occurred_at))]
                for period in rule.counted_periods
            }
            _check_cooldown(rule, own.get("lifetime"), occurred_at)
            growth, points = rule.amounts(attributes=event.attributes, multipliers=multipliers)
            growth, points, capped = _apply_caps(rule, own, growth, points)
            if rule.budget_points is not None and points:
                _spend_budget(rule, points)
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


def _spend_budget(rule: CompiledRule, points: int) -> None:
    """Take ``points`` from the rule's total budget, or skip the rule if they are not left.
    One conditional update: concurrent events queue on the budget's row and none passes it;
    a chunk rolled back gives its points back with everything else."""
    taken = RuleBudget.objects.filter(
        rule_id=rule.rule_id, spent__lte=rule.budget_points - points
    ).update(spent=F("spent") + points)
    if not taken:
        raise Skip("budget_spent", f"The rule's budget of {rule.budget_points:,} points is spent.")


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
