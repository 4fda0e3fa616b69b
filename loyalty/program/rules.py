"""Earning rules as data, and the small evaluator that runs them.

A rule version's ``definition`` (a JSON snapshot) compiles into a ``CompiledRule``. Conditions
are ``attribute operator value`` triples; each operator is one entry in ``OPERATORS``: adding an
operator is adding one function. Nothing here touches the database.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_datetime

# No single credit may exceed this: it keeps absurd attribute values from overflowing balances.
MAX_CREDIT = 10**12
# A per-unit attribute (an order amount, say) must be below this, and as text at most this
# long: checked before any arithmetic, since rounding a number such as 1e999999 to an integer
# would take minutes of CPU, and reading a number thousands of digits long, milliseconds.
MAX_UNIT_VALUE = 10**12
MAX_UNIT_TEXT = 40

ROUNDINGS = {"down": ROUND_FLOOR, "half_up": ROUND_HALF_UP, "up": ROUND_CEILING}


class Skip(Exception):
    """The rule does not credit this event; ``reason`` is the stable code reported back."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(detail or reason)


# --- Conditions -------------------------------------------------------------------------------

_MISSING = object()
# Conditions on ``member.<property>`` read the member, not the event (docs/rules.md): the
# event's own attribute of that name is not reachable by a condition.
MEMBER = "member"


def read_attribute(attributes: Mapping[str, Any], path: str) -> Any:
    """``amount`` or a dotted path into nested objects: ``item.category``."""
    value: Any = attributes
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def as_decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def unit_value(raw: Any) -> Decimal | None:
    """A per-unit attribute's value if it is usable: a finite number ≥ 0 and below
    ``MAX_UNIT_VALUE``, written (as text) in at most ``MAX_UNIT_TEXT`` characters; else None."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        # Compared as it is: a JSON integer may have thousands of digits.
        return Decimal(raw) if 0 <= raw < MAX_UNIT_VALUE else None
    if isinstance(raw, str) and len(raw) > MAX_UNIT_TEXT:
        return None
    number = as_decimal(raw)
    if number is None or number < 0 or number >= MAX_UNIT_VALUE:
        return None
    return number


def _equal(actual: Any, expected: Any) -> bool:
    if isinstance(actual, int | float | Decimal) or isinstance(expected, int | float | Decimal):
        left, right = as_decimal(actual), as_decimal(expected)
        if left is not None and right is not None:
            return left == right
    return actual == expected


def _compare(check: Callable[[Decimal, Decimal], bool]) -> Callable[[Any, Any], bool]:
    def compare(actual: Any, expected: Any) -> bool:
        left, right = as_decimal(actual), as_decimal(expected)
        return left is not None and right is not None and check(left, right)

    return compare


def _in(actual: Any, expected: Any) -> bool:
    return isinstance(expected, list) and any(_equal(actual, option) for option in expected)


def _contains(actual: Any, expected: Any) -> bool:
    if isinstance(actual, str):
        return isinstance(expected, str) and expected in actual
    if isinstance(actual, list):
        return any(_equal(item, expected) for item in actual)
    return False


def _multiple_of(actual: Any, expected: Any) -> bool:
    """Every n-th: a whole positive number that ``expected`` (a whole number ≥ 1) divides (a
    bonus for every fifth friend who qualifies, say)."""
    left, right = as_decimal(actual), as_decimal(expected)
    return (
        left is not None
        and right is not None
        and right >= 1
        and right == right.to_integral_value()
        and left > 0
        and left == left.to_integral_value()
        and left % right == 0
    )


OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _equal,
    "ne": lambda actual, expected: not _equal(actual, expected),
    "gt": _compare(lambda a, b: a > b),
    "gte": _compare(lambda a, b: a >= b),
    "lt": _compare(lambda a, b: a < b),
    "lte": _compare(lambda a, b: a <= b),
    "in": _in,
    "contains": _contains,
    "multiple_of": _multiple_of,
}


@dataclass(frozen=True)
class Condition:
    attribute: str
    operator: str
    value: Any

    def holds(self, attributes: Mapping[str, Any]) -> bool:
        actual = read_attribute(attributes, self.attribute)
        if actual is _MISSING:
            # A missing attribute differs from everything, and meets no other condition.
            return self.operator == "ne"
        return OPERATORS[self.operator](actual, self.value)

    def __str__(self) -> str:
        return f"{self.attribute} {self.operator} {self.value!r}"


# --- Rules ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cap:
    period: str
    measure: str
    limit: int


@dataclass(frozen=True)
class Multipliers:
    growth: Decimal = Decimal(1)
    points: Decimal = Decimal(1)


NO_MULTIPLIERS = Multipliers()


@dataclass(frozen=True)
class CompiledRule:
    rule_id: int
    version_id: int
    version: int
    code: str
    action: str
    is_active: bool
    priority: int
    stop_further_rules: bool
    growth_per_occurrence: int
    points_per_occurrence: int
    unit_attribute: str
    unit_size: Decimal
    growth_per_unit: Decimal
    points_per_unit: Decimal
    rounding: str
    apply_tier_multipliers: bool
    cooldown: timedelta | None
    valid_from: datetime | None
    valid_until: datetime | None
    new_members_within_days: int | None
    conditions: tuple[Condition, ...]
    caps: tuple[Cap, ...]
    hold_days: int = 0
    points_expiry: str = "inherit"
    points_expiry_n: int = 12
    points_expiry_date: str = "12-31"
    # Whether a condition reads the member (``member.…``) rather than the event.
    uses_member: bool = False
    # Points the rule may credit in all, across members (``RuleBudget``); None: no limit.
    budget_points: int | None = None

    @classmethod
    def from_definition(
        cls, *, rule_id: int, version_id: int, version: int, definition: dict
    ) -> "CompiledRule":
        d = definition
        return cls(
            rule_id=rule_id,
            version_id=version_id,
            version=version,
            code=d["code"],
            action=d["action"],
            is_active=d["is_active"],
            priority=d["priority"],
            stop_further_rules=d["stop_further_rules"],
            growth_per_occurrence=d["growth_per_occurrence"],
            points_per_occurrence=d["points_per_occurrence"],
            unit_attribute=d["unit_attribute"],
            unit_size=Decimal(d["unit_size"]),
            growth_per_unit=Decimal(d["growth_per_unit"]),
            points_per_unit=Decimal(d["points_per_unit"]),
            rounding=d["rounding"],
            apply_tier_multipliers=d["apply_tier_multipliers"],
            cooldown=timedelta(seconds=d["cooldown_seconds"]) if d["cooldown_seconds"] else None,
            valid_from=parse_datetime(d["valid_from"]) if d["valid_from"] else None,
            valid_until=parse_datetime(d["valid_until"]) if d["valid_until"] else None,
            new_members_within_days=d["new_members_within_days"],
            conditions=tuple(Condition(**c) for c in d["conditions"]),
            uses_member=any(c["attribute"].split(".", 1)[0] == MEMBER for c in d["conditions"]),
            budget_points=d.get("budget_points"),
            caps=tuple(Cap(**c) for c in d["caps"]),
            # Versions published before these existed keep the defaults.
            hold_days=d.get("hold_days", 0),
            points_expiry=d.get("points_expiry", "inherit"),
            points_expiry_n=d.get("points_expiry_n", 12),
            points_expiry_date=d.get("points_expiry_date", "12-31"),
        )

    @property
    def sort_key(self) -> tuple[int, str]:
        return (self.priority, self.code)

    @property
    def counted_periods(self) -> set[str]:
        """Periods whose counters this rule keeps: its caps', and lifetime for a cooldown."""
        periods = {cap.period for cap in self.caps}
        if self.cooldown:
            periods.add("lifetime")
        return periods

    def check_applies(
        self, *, occurred_at: datetime, member_joined_at: datetime, attributes: Mapping[str, Any]
    ) -> None:
        """Raise ``Skip`` unless the rule is live at ``occurred_at`` for this member and event."""
        if not self.is_active:
            raise Skip("rule_inactive", "The rule is switched off.")
        if self.valid_from and occurred_at < self.valid_from:
            raise Skip("rule_inactive", f"The rule starts at {self.valid_from.isoformat()}.")
        if self.valid_until and occurred_at >= self.valid_until:
            raise Skip("rule_inactive", f"The rule ended at {self.valid_until.isoformat()}.")
        days = self.new_members_within_days
        if days is not None and occurred_at > member_joined_at + timedelta(days=days):
            raise Skip("condition_not_met", f"Only for members in their first {days} days.")
        for condition in self.conditions:
            if not condition.holds(attributes):
                raise Skip("condition_not_met", f"Condition not met: {condition}.")

    @property
    def unit_problem(self) -> str:
        return (
            f"Attribute {self.unit_attribute!r} must be a number ≥ 0 and below "
            f"{MAX_UNIT_VALUE:,}, written in at most {MAX_UNIT_TEXT} characters."
        )

    def refuses_attributes(self, attributes: Mapping[str, Any]) -> bool:
        """Whether the event carries this rule's per-unit attribute in a form no rule could
        use (not a number, negative, out of bounds). A missing one is not refused: another rule
        of the action may credit the event without it."""
        if not self.unit_attribute:
            return False
        raw = read_attribute(attributes, self.unit_attribute)
        return raw is not _MISSING and unit_value(raw) is None

    def amounts(
        self, *, attributes: Mapping[str, Any], multipliers: Multipliers
    ) -> tuple[int, int]:
        """``(growth, points)`` this rule earns for the event, before caps.

        Per occurrence plus per unit of ``unit_attribute``, times the tier multipliers, then
        rounded once by the rule's rounding (down unless the operator chose otherwise).
        """
        units = Decimal(0)
        if self.unit_attribute:
            raw = read_attribute(attributes, self.unit_attribute)
            value = None if raw is _MISSING else unit_value(raw)
            if value is None:
                raise Skip("invalid_attribute", self.unit_problem)
            units = value / self.unit_size
        if not self.apply_tier_multipliers:
            multipliers = NO_MULTIPLIERS
        rounding = ROUNDINGS[self.rounding]
        growth = (self.growth_per_occurrence + self.growth_per_unit * units) * multipliers.growth
        points = (self.points_per_occurrence + self.points_per_unit * units) * multipliers.points
        growth_int = int(growth.to_integral_value(rounding=rounding))
        points_int = int(points.to_integral_value(rounding=rounding))
        if abs(growth_int) > MAX_CREDIT or abs(points_int) > MAX_CREDIT:
            raise Skip("invalid_attribute", f"The credit would exceed {MAX_CREDIT:,}.")
        return max(growth_int, 0), max(points_int, 0)


def rule_definition(rule) -> dict:
    """The JSON snapshot of an ``EarningRule`` (with its conditions and caps) that a version
    keeps and the engine compiles."""
    return {
        "code": rule.code,
        "action": rule.action.code,
        "name": rule.name,
        "is_active": rule.is_active,
        "priority": rule.priority,
        "stop_further_rules": rule.stop_further_rules,
        "growth_per_occurrence": rule.growth_per_occurrence,
        "points_per_occurrence": rule.points_per_occurrence,
        "unit_attribute": rule.unit_attribute,
        "unit_size": str(rule.unit_size),
        "growth_per_unit": str(rule.growth_per_unit),
        "points_per_unit": str(rule.points_per_unit),
        "rounding": rule.rounding,
        "apply_tier_multipliers": rule.apply_tier_multipliers,
        "cooldown_seconds": rule.cooldown_seconds,
        "valid_from": rule.valid_from.isoformat() if rule.valid_from else None,
        "valid_until": rule.valid_until.isoformat() if rule.valid_until else None,
        "new_members_within_days": rule.new_members_within_days,
        "hold_days": rule.hold_days,
        "points_expiry": rule.points_expiry,
        "points_expiry_n": rule.points_expiry_n,
        "points_expiry_date": rule.points_expiry_date,
        "conditions": [
            {"attribute": c.attribute, "operator": c.operator, "value": c.value}
            for c in rule.conditions.all()
        ],
        "caps": [
            {"period": c.period, "measure": c.measure, "limit": c.limit} for c in rule.caps.all()
        ],
        # Only when set: versions published before budgets existed stay the same.
        **({"budget_points": rule.budget_points} if rule.budget_points is not None else {}),
    }
