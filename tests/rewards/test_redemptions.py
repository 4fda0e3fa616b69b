"""Redemption and cancellation: eligibility with stable refusal codes, coupon codes, stock,
limits, tier discounts and exclusives, refunds with the original expiry."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Member
from loyalty.engine.tier_review import tier_lock
from loyalty.models import EntryKind, LedgerEntry, MemberStanding, PointLot, Tier
from rewards.models import CouponCode, Redemption, Reward
from rewards.services.catalog import RedemptionRefused, catalog_for
from rewards.services.redemptions import (
    CannotCancel,
    RewardNotFound,
    redeem,
    redemption_advance,
    redemption_cancel,
)
from tests.factories import give_points, make_reward, make_tiers
from tests.helpers import assert_balances_match_ledger

pytestmark = pytest.mark.django_db


def points(member: Member) -> int:
    return MemberStanding.objects.get(pk=member.pk).points


def refused(code: str, **kwargs):
    with pytest.raises(RedemptionRefused) as error:
        redeem(**kwargs)
    assert error.value.code == code
    return error.value


def test_a_redemption_spends_points_takes_stock_and_hands_out_a_code(db):
    member = give_points("alice", 500)
    reward = make_reward("ten-off", codes=3, cost_points=200, stock=5)
    redemption = redeem(member=member, reward_code="ten-off", idempotency_key="r1").redemption
    assert redemption.coupon_code == "TEN-OFF-0000"
    assert CouponCode.objects.get(code="TEN-OFF-0000").redemption == redemption
    assert points(member) == 300
    reward.refresh_from_db()
    assert (reward.stock, reward.redeemed_count) == (4, 1)
    spend = LedgerEntry.objects.get(kind=EntryKind.SPEND)
    assert (spend.amount, spend.source_type, spend.source_id) == (
        -200,
        "redemption",
        str(redemption.pk),
    )
    # What the redemption stores points at its spend and code (written with the stock taken).
    stored = Redemption.objects.get(pk=redemption.pk)
    assert (stored.spend_entry_id, stored.coupon_code) == (spend.pk, "TEN-OFF-0000")
    assert_balances_match_ledger()


def test_a_retry_is_never_charged_twice(db):
    member = give_points("alice", 500)
    make_reward(cost_points=200)
    first = redeem(member=member, reward_code="gift", idempotency_key="r1")
    again = redeem(member=member, reward_code="gift", idempotency_key="r1")
    assert again.replayed and again.redemption.pk == first.redemption.pk
    assert points(member) == 300


def test_refusals_have_stable_codes_and_change_nothing(db):
    member = give_points("alice", 150)
    make_reward("pricey", cost_points=200)
    refused("insufficient_points", member=member, reward_code="pricey", idempotency_key="a")
    make_reward("gone", stock=0)
    refused("out_of_stock", member=member, reward_code="gone", idempotency_key="b")
    make_reward("off", is_active=False)
    refused("not_available", member=member, reward_code="off", idempotency_key="c")
    make_reward("later", available_from=timezone.now() + timedelta(days=1))
    refused("not_available", member=member, reward_code="later", idempotency_key="d")
    make_reward("ended", available_until=timezone.now() - timedelta(seconds=1))
    refused("not_available", member=member, reward_code="ended", idempotency_key="e")
    make_reward("empty-pool", codes=1)
    give_points("bob", 500)
    redeem(
        member=Member.objects.get(external_id="bob"), reward_code="empty-pool", idempotency_key="f"
    )
    refused("out_of_stock", member=member, reward_code="empty-pool", idempotency_key="g")
    with pytest.raises(RewardNotFound):
        redeem(member=member, reward_code="nothing", idempotency_key="h")
    assert points(member) == 150
    assert not Redemption.objects.filter(member=member).exists()


def test_member_limits_overall_and_per_period(db):
    member = give_points("alice", 1000)
    make_reward("once", limit_per_member=1)
    redeem(member=member, reward_code="once", idempotency_key="a")
    refused("limit_reached", member=member, reward_code="once", idempotency_key="b")
    make_reward("twice-a-month", limit_per_period=2, limit_period="month")
    redeem(member=member, reward_code="twice-a-month", idempotency_key="c")
    second = redeem(member=member, reward_code="twice-a-month", idempotency_key="d").redemption
    refused("limit_reached", member=member, reward_code="twice-a-month", idempotency_key="e")
    redemption_cancel(redemption_id=second.pk)  # a cancelled redemption does not count
    redeem(member=member, reward_code="twice-a-month", idempotency_key="f")


def test_tier_minimums_exclusives_and_discounts(db):
    member = give_points("alice", 1000)
    _, silver, gold = make_tiers(
        ("member", 0), ("silver", 100), ("gold", 500, {"reward_discount": {"percent": 10}})
    )
    make_reward("gold-lounge", min_tier=gold, cost_points=300)
    refused("tier_required", member=member, reward_code="gold-lounge", idempotency_key="a")
    exclusive = make_reward("silver-only", cost_points=50)
    exclusive.exclusive_tiers.set([silver])
    refused("tier_required", member=member, reward_code="silver-only", idempotency_key="b")
    tier_lock(member=member, tier=Tier.objects.get(code="gold"))
    redemption = redeem(member=member, reward_code="gold-lounge", idempotency_key="c").redemption
    assert redemption.points_cost == 270  # 10 % off for gold
    refused("tier_required", member=member, reward_code="silver-only", idempotency_key="d")


def test_the_catalog_says_the_price_and_why_not(db):
    member = give_points("alice", 250)
    make_reward("cheap", cost_points=100)
    make_reward("dear", cost_points=300)
    offers = {o.reward.code: o for o in catalog_for(member=member)}
    assert offers["cheap"].can_redeem and offers["cheap"].price == 100
    assert offers["dear"].refusal.code == "insufficient_points"


def test_cancelling_refunds_once_with_the_original_expiry_returns_stock_and_the_code(db):
    member = give_points("alice", 100)
    expiry = timezone.now() + timedelta(days=10)
    PointLot.objects.update(expires_at=expiry)
    reward = make_reward("ten-off", codes=1, cost_points=80, stock=1)
    redemption = redeem(member=member, reward_code="ten-off", idempotency_key="r1").redemption
    cancelled = redemption_cancel(redemption_id=redemption.pk)
    assert cancelled.status == "cancelled"
    again = redemption_cancel(redemption_id=redemption.pk)
    assert again.status == "cancelled"
    assert points(member) == 100
    assert LedgerEntry.objects.filter(kind=EntryKind.REFUND).count() == 1
    refund_lot = PointLot.objects.get(entry__kind=EntryKind.REFUND)
    assert (refund_lot.amount, refund_lot.expires_at) == (80, expiry)
    reward.refresh_from_db()
    assert (reward.stock, reward.redeemed_count) == (1, 0)
    assert CouponCode.objects.get().redemption is None
    assert_balances_match_ledger()
    from loyalty.ledger.reconciliation import verify_ledger

    assert verify_ledger().ok


def test_a_shipped_gift_moves_on_and_cannot_be_cancelled(db):
    member = give_points("alice", 100)
    make_reward("tote", kind=Reward.Kind.PHYSICAL, cost_points=50)
    redemption = redeem(
        member=member, reward_code="tote", idempotency_key="r", details={"address": "1 Main St"}
    ).redemption
    assert redemption.status == "pending"
    redemption_advance(redemption_id=redemption.pk, to="shipped")
    with pytest.raises(CannotCancel):
        redemption_cancel(redemption_id=redemption.pk)
    assert redemption_advance(redemption_id=redemption.pk, to="delivered").status == "delivered"
    with pytest.raises(CannotCancel):
        redemption_advance(redemption_id=redemption.pk, to="shipped")


def test_a_members_data_export_includes_their_redemptions(db):
    from loyalty.engine.data_rights import member_export

    member = give_points("alice", 500)
    make_reward(cost_points=100)
    redeem(member=member, reward_code="gift", idempotency_key="r")
    assert [r["reward__code"] for r in member_export(member=member)["redemptions"]] == ["gift"]
