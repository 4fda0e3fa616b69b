"""Reversals: full and partial, before and after spending, under both shortfall settings,
retried idempotently; counters behind caps are corrected, the tier is left to the review."""

from decimal import Decimal

import pytest
from django.utils import timezone

from core.idempotency import IdempotencyConflict
from loyalty.engine.events import EventInput, record_event
from loyalty.engine.reversals import ReversalRefused, event_reverse
from loyalty.ledger.points import points_debit_locked
from loyalty.ledger.session import member_session
from loyalty.models import EntryKind, MemberStanding, PointLot, Program, SourceType
from loyalty.program.compiled import program_changed
from tests.factories import make_rule, make_tiers
from tests.helpers import assert_balances_match_ledger

pytestmark = pytest.mark.django_db


@pytest.fixture
def purchase_rule(db):
    return make_rule(
        "purchase",
        growth_per_occurrence=10,
        unit_attribute="amount",
        points_per_unit=1,
        growth_per_unit="0.1",
    )


def buy(amount="200.00", key="order-1", member="m1", at=None) -> int:
    event = EventInput(
        external_id=member,
        action="purchase",
        idempotency_key=key,
        attributes={"amount": amount},
        occurred_at=at,
    )
    return record_event(client=None, event=event).event_id


def reverse(event_id, key="refund-1", amount=None):
    return event_reverse(
        client=None,
        event_id=event_id,
        idempotency_key=key,
        amount=Decimal(amount) if amount else None,
    )


def standing() -> MemberStanding:
    return MemberStanding.objects.get()


def spend(amount: int) -> None:
    with member_session(standing().pk) as session:
        points_debit_locked(
            work=session.work,
            standing=session.standing,
            amount=amount,
            kind=EntryKind.SPEND,
            source_type=SourceType.REDEMPTION,
        )


def set_shortfall(policy: str) -> None:
    Program.objects.update_or_create(pk=1, defaults={"reversal_shortfall": policy})
    program_changed()


def test_a_full_reversal_takes_back_everything(purchase_rule):
    event_id = buy()
    result = reverse(event_id).as_dict()
    assert (result["growth"], result["points"], result["shortfall"]) == (30, 200, 0)
    s = standing()
    assert (s.growth, s.points, s.points_earned) == (0, 0, 0)
    assert_balances_match_ledger()


def test_partial_reversals_take_back_in_proportion_and_add_up_exactly(purchase_rule):
    event_id = buy("100.00")  # growth 10 + 10 = 20, points 100
    first = reverse(event_id, "r1", "33.33").as_dict()
    assert (first["growth"], first["points"]) == (7, 33)
    second = reverse(event_id, "r2", "33.33").as_dict()
    third = reverse(event_id, "r3", "33.34").as_dict()
    assert first["growth"] + second["growth"] + third["growth"] == 20
    assert first["points"] + second["points"] + third["points"] == 100
    assert third["fraction_reversed"] == "1.00000000"
    assert (standing().growth, standing().points) == (0, 0)
    with pytest.raises(ReversalRefused) as refused:
        reverse(event_id, "r4", "1")
    assert refused.value.code == "already_reversed"


def test_a_refund_larger_than_what_is_left_is_refused(purchase_rule):
    event_id = buy("100.00")
    reverse(event_id, "r1", "60")
    with pytest.raises(ReversalRefused) as refused:
        reverse(event_id, "r2", "50")
    assert refused.value.code == "amount_too_large"
    assert standing().points == 40


def test_a_partial_reversal_needs_a_per_unit_rule(db):
    make_rule("review", points_per_occurrence=10)
    event_id = record_event(
        client=None, event=EventInput(external_id="m1", action="review", idempotency_key="k")
    ).event_id
    with pytest.raises(ReversalRefused) as refused:
        reverse(event_id, amount="5")
    assert refused.value.code == "partial_not_possible"
    assert reverse(event_id).as_dict()["points"] == 10


def test_a_retried_reversal_takes_back_once(purchase_rule):
    event_id = buy()
    first = reverse(event_id, "refund-1", "50")
    again = reverse(event_id, "refund-1", "50")
    assert again.replayed and again.outcome == first.outcome
    assert standing().points == 150
    with pytest.raises(IdempotencyConflict):
        reverse(event_id, "refund-1", "60")


def test_pending_points_are_voided_first(db):
    make_rule("purchase", unit_attribute="amount", points_per_unit=1, hold_days=14)
    event_id = buy("100")
    result = reverse(event_id, amount="40").as_dict()
    assert (result["pending_voided"], result["points"]) == (40, 40)
    s = standing()
    assert (s.points_pending, s.points) == (60, 0)
    assert PointLot.objects.get().remaining == 60
    assert_balances_match_ledger()


def test_after_spending_the_shortfall_is_recorded_by_default(purchase_rule):
    event_id = buy("100")  # 100 points
    spend(80)
    result = reverse(event_id).as_dict()
    assert (result["points"], result["shortfall"]) == (20, 80)
    assert standing().points == 0
    assert_balances_match_ledger()


def test_after_spending_the_shortfall_comes_from_other_points_first(purchase_rule):
    buy("50", key="older")
    event_id = buy("100", key="newer")
    spend(120)  # 30 left, all of them from the "newer" purchase's lot
    result = reverse(event_id).as_dict()
    assert (result["points"], result["shortfall"]) == (30, 70)
    assert standing().points == 0


def test_under_the_negative_policy_the_balance_goes_below_zero_and_is_paid_back(purchase_rule):
    set_shortfall("negative")
    event_id = buy("100")
    spend(80)
    result = reverse(event_id).as_dict()
    assert (result["points"], result["shortfall"]) == (100, 0)
    assert standing().points == -80
    buy("50", key="later")
    assert standing().points == -30
    assert PointLot.objects.get(event__idempotency_key="later").remaining == 0  # repaid the debt
    buy("50", key="even-later")
    assert standing().points == 20
    assert sum(PointLot.objects.values_list("remaining", flat=True)) == 20
    assert_balances_match_ledger()


def test_a_full_reversal_gives_the_occurrence_back_to_the_cap(db):
    make_rule("purchase", points_per_occurrence=10, caps=[("day", "occurrences", 1)])
    at = timezone.now()
    event_id = buy(at=at)
    assert (
        record_event(
            client=None,
            event=EventInput(
                external_id="m1", action="purchase", idempotency_key="b", occurred_at=at
            ),
        ).outcome["reason"]
        == "cap_reached"
    )
    reverse(event_id)
    assert (
        record_event(
            client=None,
            event=EventInput(
                external_id="m1", action="purchase", idempotency_key="c", occurred_at=at
            ),
        ).outcome["points"]
        == 10
    )


def test_a_reversal_never_lowers_the_tier_by_itself(purchase_rule):
    make_tiers(("member", 0), ("silver", 20))
    event_id = buy("200")
    assert standing().tier.code == "silver"
    reverse(event_id)
    assert standing().tier.code == "silver"
    assert standing().growth == 0


def test_reversing_an_event_that_credited_nothing_is_refused(db):
    event_id = record_event(
        client=None, event=EventInput(external_id="m1", action="nothing", idempotency_key="k")
    ).event_id
    with pytest.raises(ReversalRefused) as refused:
        reverse(event_id)
    assert refused.value.code == "nothing_to_reverse"
