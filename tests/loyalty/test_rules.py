"""The rule evaluator on its own: conditions and amounts (no database)."""

from decimal import Decimal

import pytest

from loyalty.program.rules import NO_MULTIPLIERS, CompiledRule, Condition, Multipliers, Skip


def rule(**overrides) -> CompiledRule:
    definition = {
        "code": "r",
        "action": "purchase",
        "name": "r",
        "is_active": True,
        "priority": 100,
        "stop_further_rules": False,
        "growth_per_occurrence": 0,
        "points_per_occurrence": 0,
        "unit_attribute": "",
        "unit_size": "1.00",
        "growth_per_unit": "0",
        "points_per_unit": "0",
        "rounding": "down",
        "apply_tier_multipliers": True,
        "cooldown_seconds": 0,
        "valid_from": None,
        "valid_until": None,
        "new_members_within_days": None,
        "conditions": [],
        "caps": [],
    }
    definition.update(overrides)
    return CompiledRule.from_definition(rule_id=1, version_id=1, version=1, definition=definition)


@pytest.mark.parametrize(
    ("operator", "value", "attribute", "holds"),
    [
        ("eq", "gold", "gold", True),
        ("eq", 100, "100.00", True),
        ("eq", "100", 100, True),
        ("ne", "gold", "silver", True),
        ("ne", "gold", "gold", False),
        ("gt", 100, 100.01, True),
        ("gt", 100, 100, False),
        ("gte", 100, "100", True),
        ("lt", 100, 99, True),
        ("lte", 100, 101, False),
        ("gt", 100, "not a number", False),
        ("in", ["a", "b"], "b", True),
        ("in", ["a", "b"], "c", False),
        ("in", [1, 2], "2", True),
        ("in", [1, 2], "3", False),
        ("in", [1, 2], 2.0, True),
        ("contains", "sale", "summer-sale-2026", True),
        ("contains", "shoes", ["hats", "shoes"], True),
        ("contains", "x", 5, False),
    ],
)
def test_condition_operators(operator, value, attribute, holds):
    assert Condition("a", operator, value).holds({"a": attribute}) is holds


def test_a_missing_attribute_meets_only_ne():
    assert not Condition("a", "eq", None).holds({})
    assert not Condition("a", "lt", 5).holds({})
    assert Condition("a", "ne", 5).holds({})


def test_conditions_read_dotted_paths():
    assert Condition("item.category", "eq", "books").holds({"item": {"category": "books"}})
    assert not Condition("item.category", "eq", "books").holds({"item": "books"})


def test_per_unit_points_round_down_by_default():
    assert rule(unit_attribute="amount", points_per_unit="1").amounts(
        attributes={"amount": "199.99"}, multipliers=NO_MULTIPLIERS
    ) == (0, 199)


@pytest.mark.parametrize(("rounding", "points"), [("down", 12), ("half_up", 13), ("up", 13)])
def test_rounding_is_the_rules_choice(rounding, points):
    r = rule(unit_attribute="amount", points_per_unit="0.5", rounding=rounding)
    assert r.amounts(attributes={"amount": 25}, multipliers=NO_MULTIPLIERS) == (0, points)


def test_unit_size_scales_the_per_unit_rate():
    r = rule(
        unit_attribute="amount", unit_size="10.00", growth_per_unit="1", points_per_occurrence=5
    )
    assert r.amounts(attributes={"amount": "99.99"}, multipliers=NO_MULTIPLIERS) == (9, 5)


def test_multipliers_apply_before_the_single_rounding():
    r = rule(unit_attribute="amount", points_per_unit="1")
    doubled_and_a_half = Multipliers(points=Decimal("1.5"))
    assert r.amounts(attributes={"amount": "3"}, multipliers=doubled_and_a_half) == (0, 4)


def test_a_rule_may_ignore_tier_multipliers():
    r = rule(points_per_occurrence=10, apply_tier_multipliers=False)
    assert r.amounts(attributes={}, multipliers=Multipliers(points=Decimal(2))) == (0, 10)


@pytest.mark.parametrize("amount", [None, "abc", -5, "NaN", "Infinity", True, "1e40"])
def test_an_unusable_unit_attribute_skips_with_invalid_attribute(amount):
    r = rule(unit_attribute="amount", points_per_unit="1")
    with pytest.raises(Skip) as skip:
        r.amounts(attributes={"amount": amount}, multipliers=NO_MULTIPLIERS)
    assert skip.value.reason == "invalid_attribute"
