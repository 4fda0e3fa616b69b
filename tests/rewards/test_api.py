"""Catalog and redemption endpoints over real HTTP."""

import pytest
from django.urls import reverse

from accounts import scopes
from accounts.services import api_client_create
from rewards.models import Redemption, Reward
from tests.factories import give_points, make_reward, make_tiers
from tests.helpers import assert_balances_match_ledger, assert_error


@pytest.fixture
def catalog(db):
    make_tiers(("member", 0), ("gold", 1000, {"reward_discount": {"percent": 10}}))
    make_reward("ten-off", codes=2, cost_points=300)
    make_reward("tote", kind=Reward.Kind.PHYSICAL, cost_points=500, stock=1)
    give_points("alice", 700)


def redeem_body(reward="ten-off", key="r1", member="alice", **extra):
    return {"external_id": member, "reward": reward, "idempotency_key": key, **extra}


def test_the_catalog_for_a_member_shows_price_and_eligibility(api, catalog):
    offers = {o["code"]: o for o in api.get("/api/v1/rewards", params={"member": "alice"}).json()}
    assert offers["ten-off"]["can_redeem"] is True
    assert offers["ten-off"]["price"] == 300
    assert offers["tote"]["can_redeem"] is True
    plain = api.get("/api/v1/rewards").json()
    assert {o["code"] for o in plain} == {"ten-off", "tote"}


def test_a_redemption_answers_with_the_code_and_a_retry_is_not_charged(api, catalog):
    response = api.post("/api/v1/redemptions", json=redeem_body())
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["coupon_code"].startswith("TEN-OFF-")
    assert body["points_cost"] == 300
    again = api.post("/api/v1/redemptions", json=redeem_body())
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert api.get("/api/v1/members/alice").json()["balances"]["points"]["spendable"] == 400
    listed = api.get("/api/v1/members/alice/redemptions").json()["results"]
    assert [r["id"] for r in listed] == [body["id"]]


def test_refusals_are_422_with_stable_codes(api, catalog):
    api.post("/api/v1/redemptions", json=redeem_body("tote", "t1"))
    error = assert_error(
        api.post("/api/v1/redemptions", json=redeem_body("tote", "t2")), 422, "out_of_stock"
    )
    assert error["message"]
    assert_error(
        api.post("/api/v1/redemptions", json=redeem_body("ten-off", "t3")),
        422,
        "insufficient_points",
    )
    assert_error(
        api.post("/api/v1/redemptions", json=redeem_body("nothing", "t4")), 404, "reward_not_found"
    )
    assert_error(
        api.post("/api/v1/redemptions", json=redeem_body(member="ghost")), 404, "member_not_found"
    )
    assert_error(api.post("/api/v1/redemptions", json={"reward": "tote"}), 400, "validation_error")
    assert_error(
        api.post("/api/v1/redemptions", json=redeem_body("tote", "t1", details={"x": 1})),
        409,
        "idempotency_conflict",
    )


def test_cancel_refunds_once(api, catalog):
    redemption_id = api.post("/api/v1/redemptions", json=redeem_body()).json()["id"]
    first = api.post(f"/api/v1/redemptions/{redemption_id}/cancel")
    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    assert api.post(f"/api/v1/redemptions/{redemption_id}/cancel").status_code == 200
    assert api.get("/api/v1/members/alice").json()["balances"]["points"]["spendable"] == 700
    assert_error(api.post("/api/v1/redemptions/999999/cancel"), 404, "redemption_not_found")
    _, other = api_client_create(name="other", scopes=[scopes.REDEMPTIONS_WRITE])
    assert_error(
        api.as_key(other).post(f"/api/v1/redemptions/{redemption_id}/cancel"),
        404,
        "redemption_not_found",
    )
    assert_balances_match_ledger()


def test_a_member_redeems_and_lists_with_a_token(api, catalog, member_token):
    from accounts.models import Member

    token = member_token(Member.objects.get(external_id="alice"))
    as_alice = api.as_key(token)
    offers = as_alice.get("/api/v1/me/rewards").json()
    assert {o["code"] for o in offers} == {"ten-off", "tote"}
    created = as_alice.post(
        "/api/v1/me/redemptions", json={"reward": "ten-off", "idempotency_key": "mine"}
    )
    assert created.status_code == 201, created.text
    assert (
        as_alice.post(
            "/api/v1/me/redemptions", json={"reward": "ten-off", "idempotency_key": "mine"}
        ).status_code
        == 200
    )
    assert len(as_alice.get("/api/v1/me/redemptions").json()["results"]) == 1
    error = assert_error(
        as_alice.post("/api/v1/me/redemptions", json={"reward": "ten off!"}),
        400,
        "validation_error",
    )
    assert set(error["details"]) == {"reward", "idempotency_key"}
    give_points("bob", 1000)
    bob = member_token(Member.objects.get(external_id="bob"))
    # Bob's key "mine" is his own: it does not replay Alice's redemption.
    assert (
        api.as_key(bob)
        .post("/api/v1/me/redemptions", json={"reward": "ten-off", "idempotency_key": "mine"})
        .status_code
        == 201
    )
    assert Redemption.objects.count() == 2


def test_the_rewards_admin_pages_and_actions(admin_client, catalog):
    for name in ("reward", "couponpool", "redemption"):
        assert admin_client.get(reverse(f"admin:rewards_{name}_changelist")).status_code == 200
    from accounts.models import Member
    from rewards.models import CouponPool
    from rewards.services.redemptions import redeem

    pool = CouponPool.objects.get()
    codes_url = reverse("admin:rewards_couponpool_codes", args=[pool.pk])
    added = admin_client.post(codes_url, {"pattern": "NEW-XXXXX", "count": 5})
    assert "5 code(s) added, 0 already in the pool" in added.content.decode()
    assert pool.codes.count() == 7
    redemption = redeem(
        member=Member.objects.get(external_id="alice"), reward_code="tote", idempotency_key="x"
    ).redemption
    changelist = reverse("admin:rewards_redemption_changelist")
    shipped = admin_client.post(
        changelist,
        {"action": "mark_shipped", "_selected_action": [redemption.pk]},
        follow=True,
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert "已将 1 条兑换标记为已发货。" in shipped.content.decode()
    redemption.refresh_from_db()
    assert redemption.status == "shipped"
