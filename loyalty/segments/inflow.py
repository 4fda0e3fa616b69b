"""Segments evaluated for one member inside the event flow, from what the flow holds (no query
per segment): the same conditions as ``filters``, read from a member's facts.

A segment with a condition the flow cannot read (badges, quests, churn risk) is left out of the
member's segments here; ``usable_in_rules`` says which segments rules can target.
"""

from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

from loyalty.models import ActivityState, SegmentCondition
from loyalty.segments.filters import NUMBERS

Field, Operator = SegmentCondition.Field, SegmentCondition.Operator
Condition = tuple[str, str, str, str]  # field, attribute, operator, value

FACT_OF = {
    Field.POINTS: "points",
    Field.GROWTH: "growth",
    Field.POINTS_EARNED: "points_earned",
    Field.POINTS_SPENT: "points_spent",
    Field.EVENTS: "events",
}
IN_FLOW = {
    Field.TIER,
    Field.STATE,
    *NUMBERS,
    Field.JOINED,
    Field.LAST_KEY_DAY,
    Field.DAYS_AWAY,
    Field.ATTRIBUTE,
}


def usable_in_rules(conditions: tuple[Condition, ...]) -> bool:
    return all(field in IN_FLOW for field, *_rest in conditions)


def _values(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _compare(actual, operator: str, expected) -> bool:
    if actual is None:
        return False
    return {
        Operator.GTE: actual >= expected,
        Operator.LTE: actual <= expected,
        Operator.EQ: actual == expected,
    }.get(operator, False)


def _attribute_matches(found: Any, values: list[str]) -> bool:
    for value in values:
        if isinstance(found, bool):
            if value in ("true", "false") and found == (value == "true"):
                return True
        elif isinstance(found, int):
            if value.lstrip("-").isdigit() and found == int(value):
                return True
        elif found == value:
            return True
    return False


def holds(condition: Condition, facts: Mapping[str, Any], today: date) -> bool:
    field, attribute, operator, value = condition
    if field in (Field.TIER, Field.STATE):
        actual = facts["tier"] if field == Field.TIER else facts["state"] or ActivityState.NEW
        inside = actual in _values(value)
        return inside if operator == Operator.IN else not inside
    if field in FACT_OF:
        return _compare(facts[FACT_OF[field]], operator, int(value))
    if field == Field.JOINED:
        return _compare(facts["joined"], operator, date.fromisoformat(value.strip()))
    if field == Field.LAST_KEY_DAY:
        return _compare(facts["last_key_day"], operator, date.fromisoformat(value.strip()))
    if field == Field.DAYS_AWAY:
        since = facts["last_key_day"] or facts["joined"]
        return _compare(
            since,
            Operator.LTE if operator == Operator.GTE else Operator.GTE,
            today - timedelta(days=int(value)),
        )
    attributes = facts["attributes"]
    key = attribute.strip()
    present = key in attributes
    if operator == Operator.EXISTS:
        return present
    if operator == Operator.MISSING:
        return not present
    matches = present and _attribute_matches(attributes[key], _values(value))
    return matches if operator in (Operator.EQ, Operator.IN) else not matches


def segments_of(segments, facts: Mapping[str, Any], today: date) -> list[str]:
    """The codes of the segments (``CompiledProgram.segments``) the member is in."""
    return [
        code
        for code, conditions in segments
        if usable_in_rules(conditions) and all(holds(c, facts, today) for c in conditions)
    ]
