"""Rewards targeted at segments: kept for a segment's members, or priced for them."""

import pytest

from accounts.models import Member
from loyalty.models import MemberStanding, Segment, SegmentCondition, Tier
from tests.factories import give_points, make_reward, make_tiers
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def vip(db):
    make_tiers(("member", 0), ("gold", 1000, {"reward_discount": {"percent": 10}}))
    segment = Segment.objects.create(code="vip", name="VIP")
    SegmentCondition.objects.create(
        segment=segment, field="attribute", attribute="vip", operator="eq", value="true"
    )
    give_points("vera", 2000)
    give_points("nina", 2000)
    Member.objects.filter(external_id="vera").update(attributes={"vip": True})
    return segment


def offers(api, member: str) -> dict:
    return {o["code"]: o for o in api.get("/api/v1/rewards", params={"member": member}).json()}


def test_a_reward_kept_for_a_segment(api, vip):
    make_reward("lounge", cost_points=300, only_segment=vip)
    assert offers(api, "vera")["lounge"]["can_redeem"] is True
    nina = offers(api, "nina")["lounge"]
    assert nina["can_redeem"] is False and nina["reason"]["code"] == "segment_required"
    body = {"external_id": "nina", "reward": "lounge", "idempotency_key": "n1"}
    assert_error(api.post("/api/v1/redemptions", json=body), 422, "segment_required")
    body = {"external_id": "vera", "reward": "lounge", "idempotency_key": "v1"}
    assert api.post("/api/v1/redemptions", json=body).json()["points_cost"] == 300


def test_a_segment_price_then_the_tier_discount(api, vip):
    make_reward("mug", cost_points=500, price_segment=vip, segment_price=200)
    assert offers(api, "vera")["mug"]["price"] == 200
    assert offers(api, "nina")["mug"]["price"] == 500
    # Gold takes its 10 % off the segment price too.
    gold = Tier.objects.get(code="gold")
    MemberStanding.objects.filter(member__external_id="vera").update(tier=gold)
    assert offers(api, "vera")["mug"]["price"] == 180
    body = {"external_id": "vera", "reward": "mug", "idempotency_key": "m1"}
    assert api.post("/api/v1/redemptions", json=body).json()["points_cost"] == 180
