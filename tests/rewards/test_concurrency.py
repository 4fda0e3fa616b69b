"""Racing redemptions on PostgreSQL: no oversell, no overdraft, no code twice, no double
charge, no double refund."""

import pytest

from accounts.models import Member
from loyalty.models import EntryKind, LedgerEntry, MemberStanding
from rewards.models import CouponCode, Redemption, Reward
from rewards.services.catalog import RedemptionRefused
from rewards.services.redemptions import redeem, redemption_cancel
from tests.concurrency import race
from tests.factories import give_points, make_reward
from tests.helpers import assert_balances_match_ledger

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_50_members_racing_for_a_stock_of_10_get_exactly_10():
    members = [give_points(f"m{i}", 1000) for i in range(50)]
    make_reward("tote", kind=Reward.Kind.PHYSICAL, stock=10)
    results = race(
        50, lambda i: redeem(member=members[i], reward_code="tote", idempotency_key=f"k{i}")
    )
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 10
    assert all(isinstance(e, RedemptionRefused) and e.code == "out_of_stock" for e in lost), lost
    reward = Reward.objects.get()
    assert (reward.stock, reward.redeemed_count) == (0, 10)
    assert Redemption.objects.count() == 10
    assert (
        sorted(MemberStanding.objects.values_list("points", flat=True)) == [900] * 10 + [1000] * 40
    )
    assert_balances_match_ledger()


def test_20_racing_requests_of_a_member_who_can_afford_3_give_exactly_3():
    member = give_points("alice", 350)
    make_reward(cost_points=100)
    results = race(20, lambda i: redeem(member=member, reward_code="gift", idempotency_key=f"k{i}"))
    assert sum(1 for r in results if not isinstance(r, Exception)) == 3
    assert all(r.code == "insufficient_points" for r in results if isinstance(r, Exception))
    assert MemberStanding.objects.get().points == 50
    assert_balances_match_ledger()


def test_a_pool_never_hands_a_code_out_twice():
    members = [give_points(f"m{i}", 1000) for i in range(30)]
    make_reward("ten-off", codes=20)
    results = race(
        30, lambda i: redeem(member=members[i], reward_code="ten-off", idempotency_key=f"k{i}")
    )
    codes = [r.redemption.coupon_code for r in results if not isinstance(r, Exception)]
    assert len(codes) == len(set(codes)) == 20
    assert CouponCode.objects.filter(redemption__isnull=True).count() == 0
    assert all(r.code == "out_of_stock" for r in results if isinstance(r, Exception))


def test_a_retried_request_racing_itself_charges_once():
    member = give_points("alice", 1000)
    make_reward(cost_points=100)
    results = race(12, lambda i: redeem(member=member, reward_code="gift", idempotency_key="same"))
    assert all(not isinstance(r, Exception) for r in results), results
    assert len({r.redemption.pk for r in results}) == 1
    assert MemberStanding.objects.get().points == 900
    assert LedgerEntry.objects.filter(kind=EntryKind.SPEND).count() == 1


def test_racing_cancels_refund_exactly_once():
    member = give_points("alice", 1000)
    make_reward(cost_points=100, stock=5)
    redemption = redeem(member=member, reward_code="gift", idempotency_key="r").redemption
    results = race(12, lambda i: redemption_cancel(redemption_id=redemption.pk))
    assert all(not isinstance(r, Exception) for r in results), results
    assert MemberStanding.objects.get().points == 1000
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 1
    assert Reward.objects.get().stock == 5
    assert_balances_match_ledger()
    assert Member.objects.count() == 1


def test_racing_redemptions_and_cancels_keep_stock_and_counts_true():
    members = [give_points(f"m{i}", 1000) for i in range(24)]
    make_reward(cost_points=100, stock=8)
    first = [
        redeem(member=members[i], reward_code="gift", idempotency_key=f"a{i}").redemption
        for i in range(6)
    ]

    def act(i: int):
        if i < 6:
            return redemption_cancel(redemption_id=first[i].pk)
        return redeem(member=members[i], reward_code="gift", idempotency_key=f"b{i}")

    results = race(24, act)
    assert all(
        not isinstance(r, Exception) or getattr(r, "code", "") == "out_of_stock" for r in results
    ), results
    live = Redemption.objects.exclude(status=Redemption.Status.CANCELLED).count()
    reward = Reward.objects.get()
    assert reward.stock + live == 8
    assert reward.redeemed_count == live
    assert sum(1 for r in results[6:] if not isinstance(r, Exception)) == live
    assert_balances_match_ledger()
