"""A shortfall (spent points a reversal could not take back) stays an open debt: later credits
repay it first, never taking the balance below zero; it shows in the liability report and in
``verify_ledger``; leaderboards never count the points clawed back."""

from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.engine.events import EventInput, record_event
from loyalty.engine.reversals import event_reverse
from loyalty.gamification.leaderboards import (
    leaderboard_view,
    leaderboards_rebuild,
    resolve_period,
)
from loyalty.ledger.reconciliation import liability_report, verify_ledger
from loyalty.models import EntryKind, EventReversal, LedgerEntry, MemberStanding, SourceType
from rewards.services.redemptions import redeem, redemption_cancel
from tests.factories import give_points, make_leaderboard, make_reward, make_rule
from tests.helpers import assert_balances_match_ledger

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


@pytest.fixture
def program(db):
    make_rule("purchase", unit_attribute="amount", points_per_unit=1)
    make_rule("review", points_per_occurrence=40)
    return make_leaderboard("points-month", "points", "month")


def buy(amount: str, key: str, member: str = "alice") -> int:
    event = EventInput(
        external_id=member, action="purchase", idempotency_key=key, attributes={"amount": amount}
    )
    return record_event(client=None, event=event).event_id


def review(key: str, member: str = "alice") -> dict:
    event = EventInput(external_id=member, action="review", idempotency_key=key)
    return record_event(client=None, event=event).outcome


def standing(member: str = "alice") -> MemberStanding:
    return MemberStanding.objects.get(member__external_id=member)


def refund_order_after_a_redemption():
    """150 points of its own, a 9,150-point order, a 1,000-point coupon, then the order fully
    refunded: 8,300 left to take, 850 short."""
    member = give_points("alice", 150)
    order = buy("9150.00", "order-1")
    make_reward("coupon", codes=1, cost_points=1000)
    redemption = redeem(member=member, reward_code="coupon", idempotency_key="r-1").redemption
    reversal = event_reverse(client=None, event_id=order, idempotency_key="refund-1")
    return member, redemption, reversal


def test_a_shortfall_stays_owed_and_a_cancelled_redemption_repays_it_first(program):
    _, redemption, reversal = refund_order_after_a_redemption()
    assert (reversal.outcome["points"], reversal.outcome["shortfall"]) == (8300, 850)
    assert (standing().points, standing().points_owed) == (0, 850)

    redemption_cancel(redemption_id=redemption.pk, any_client=True)

    # 1,000 refunded less the 850 owed.
    assert (standing().points, standing().points_owed) == (150, 0)
    repaid = LedgerEntry.objects.get(source_type=SourceType.SHORTFALL)
    assert (repaid.kind, repaid.amount) == (EntryKind.REVERSE, -850)
    assert EventReversal.objects.get().shortfall_open == 0
    assert liability_report()["points_owed"] == 0
    assert verify_ledger().ok
    assert_balances_match_ledger()


def test_points_clawed_back_never_count_on_the_leaderboard(program):
    refund_order_after_a_redemption()
    board = program
    period = resolve_period(board, None, now=timezone.now())

    def score() -> int:
        view = leaderboard_view(board=board, period=period, member_id=standing().pk)
        return view["me"]["score"] if view["me"] else 0

    # The order's 9,150 points are all taken off the board, the 850 still owed included.
    assert score() == 0
    review("review-1")  # earns 40 points, all of them to the debt
    assert (score(), standing().points_owed) == (40, 810)
    # Rebuilt from the ledger and the reversals, the board agrees.
    leaderboards_rebuild()
    assert score() == 40


def test_later_earnings_repay_the_debt_without_going_below_zero(program):
    refund_order_after_a_redemption()

    outcome = review("review-1")

    assert outcome["points"] == 40
    assert outcome["shortfall_repaid"] == 40
    assert outcome["balances"]["points"] == 0
    assert (standing().points, standing().points_owed) == (0, 810)
    buy("1000.00", "order-2")
    assert (standing().points, standing().points_owed) == (190, 0)
    assert verify_ledger().ok
    assert_balances_match_ledger()


def test_open_debts_show_in_the_liability_report_and_the_check(program):
    refund_order_after_a_redemption()

    report = liability_report()
    assert (report["points_owed"], report["members_owing"]) == (850, 1)
    check = verify_ledger()
    assert check.ok
    assert (check.points_owed, check.members_owing) == (850, 1)


def test_the_check_finds_a_debt_that_does_not_match_its_reversals(program):
    refund_order_after_a_redemption()
    MemberStanding.objects.update(points_owed=100)

    mismatches = verify_ledger().mismatches

    assert [(m["check"], m["cached"], m["actual"]) for m in mismatches] == [
        ("points_owed", 100, 850)
    ]


def test_a_partial_refund_after_the_debt_is_repaid_owes_only_its_own_share(program):
    order = buy("1000.00", "order-1")
    make_reward("coupon", codes=1, cost_points=900)
    redeem(member=standing().member, reward_code="coupon", idempotency_key="r-1")
    first = event_reverse(
        client=None, event_id=order, idempotency_key="refund-1", amount=Decimal("500")
    )
    assert (first.outcome["points"], first.outcome["shortfall"]) == (100, 400)
    buy("400.00", "order-2")  # repays the 400
    assert (standing().points, standing().points_owed) == (0, 0)
    second = event_reverse(
        client=None, event_id=order, idempotency_key="refund-2", amount=Decimal("500")
    )
    assert (second.outcome["points"], second.outcome["shortfall"]) == (0, 500)
    assert standing().points_owed == 500
    assert verify_ledger().ok
    assert_balances_match_ledger()
