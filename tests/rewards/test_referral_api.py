"""The referral API over real HTTP: codes, attribution with stable error codes, invitees."""

import pytest

from rewards.referrals.models import Referral, ReferralProgram
from tests.helpers import assert_error
from tests.rewards.referral_setup import member, purchase, referral_program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def program():
    referral_program(link_template="https://shop.example/join?ref={code}")


def test_code_attribution_and_invitees(api, program):
    member("alice", display_name="Alice")
    member("bob", display_name="Bob")
    mine = api.get("/api/v1/members/alice/referral")
    assert mine.status_code == 200, mine.text
    body = mine.json()
    code = body["code"]
    assert body["link"] == f"https://shop.example/join?ref={code}"
    assert (body["active"], body["joined"], body["qualified"], body["invited_by"]) == (
        True,
        0,
        0,
        None,
    )
    created = api.post(
        "/api/v1/members/bob/referral", json={"code": code, "signals": {"device_id": "d-1"}}
    )
    assert created.status_code == 201, created.text
    assert created.json()["inviter"] == "alice" and created.json()["state"] == "joined"
    again = api.post("/api/v1/members/bob/referral", json={"code": code})
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert api.get("/api/v1/members/bob/referral").json()["invited_by"]["inviter"] == "alice"
    purchase("bob", "75.00")
    invitees = api.get("/api/v1/members/alice/invitees").json()["results"]
    assert [(i["member"], i["state"], i["rewarded"]) for i in invitees] == [
        ("bob", "qualified", True)
    ]
    assert api.get("/api/v1/members/alice/referral").json()["qualified"] == 1


def test_refusals_have_stable_codes(api, program):
    member("alice")
    member("bob")
    assert_error(
        api.post("/api/v1/members/bob/referral", json={"code": "ZZZZZZZZZZ"}),
        404,
        "referral_code_unknown",
    )
    assert_error(
        api.post("/api/v1/members/bob/referral", json={"inviter": "bob"}), 422, "self_referral"
    )
    assert_error(api.post("/api/v1/members/bob/referral", json={}), 400, "referral_inviter_missing")
    assert_error(
        api.post(
            "/api/v1/members/bob/referral", json={"inviter": "alice", "signals": {"a": {"b": 1}}}
        ),
        400,
        "invalid_signals",
    )
    assert_error(
        api.post("/api/v1/members/bob/referral", json={"code": ["x"]}), 400, "validation_error"
    )
    assert_error(
        api.post("/api/v1/members/nobody/referral", json={"inviter": "alice"}),
        404,
        "member_not_found",
    )
    ReferralProgram.objects.filter(pk=1).update(is_active=False)
    assert_error(
        api.post("/api/v1/members/bob/referral", json={"inviter": "alice"}), 422, "referrals_off"
    )
    assert not Referral.objects.exists()


def test_regenerating_retires_the_old_code(api, program):
    member("alice")
    member("bob")
    old = api.get("/api/v1/members/alice/referral").json()["code"]
    new = api.post("/api/v1/members/alice/referral/code")
    assert new.status_code == 201 and new.json()["code"] != old
    assert_error(
        api.post("/api/v1/members/bob/referral", json={"code": old}), 422, "referral_code_retired"
    )


def test_a_member_sees_their_own_code_and_masked_friends(api, program, member_token):
    alice = member("alice")
    member("bob", display_name="Bob Smith")
    token = member_token(alice)
    me = api.as_key(token)
    code = me.get("/api/v1/me/referral").json()["code"]
    api.post("/api/v1/members/bob/referral", json={"code": code})
    friends = me.get("/api/v1/me/invitees").json()["results"]
    assert friends == [
        {
            "name": "B**",
            "state": "joined",
            "joined_at": friends[0]["joined_at"],
            "qualify_by": friends[0]["qualify_by"],
            "qualified_at": None,
        }
    ]
    assert me.post("/api/v1/me/referral/code").json()["code"] != code
    # A member token cannot attribute, nor read another member.
    assert_error(
        me.post("/api/v1/members/bob/referral", json={"code": code}),
        403,
        "member_token_not_allowed",
    )


def test_new_codes_are_limited_a_day(api, program):
    member("alice")
    api.get("/api/v1/members/alice/referral")  # the first code
    for _ in range(5):
        assert api.post("/api/v1/members/alice/referral/code").status_code == 201
    assert_error(api.post("/api/v1/members/alice/referral/code"), 422, "too_many_new_codes")
