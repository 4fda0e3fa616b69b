"""Member identity endpoints and the one error shape, over real HTTP."""

import pytest

from accounts.models import Member
from tests.factories import MemberFactory
from tests.helpers import assert_error


def test_put_creates_a_member_then_updates_it(api):
    created = api.put(
        "/api/v1/members/u-1",
        json={"display_name": "Ann", "email": "ann@example.com", "attributes": {"city": "Oslo"}},
    )
    assert created.status_code == 201, created.text
    assert created.json()["display_name"] == "Ann"

    updated = api.put("/api/v1/members/u-1", json={"display_name": "Ann B."})
    assert updated.status_code == 200
    member = Member.objects.get(external_id="u-1")
    assert member.display_name == "Ann B."
    assert member.attributes == {"city": "Oslo"}  # fields not sent stay as they were


def test_get_reads_a_member(api):
    MemberFactory(external_id="u-2", display_name="Bo")
    body = api.get("/api/v1/members/u-2").json()
    assert body["external_id"] == "u-2"
    assert body["display_name"] == "Bo"


def test_an_unknown_member_is_404(api):
    error = assert_error(api.get("/api/v1/members/nobody"), 404, "member_not_found")
    assert error["details"] == {"external_id": "nobody"}


def test_the_member_list_is_paginated_newest_first(api):
    MemberFactory.create_batch(5)
    first = api.get("/api/v1/members", params={"page_size": 2}).json()
    assert len(first["results"]) == 2
    assert first["next"]
    ids = [m["external_id"] for m in first["results"]]
    newest = list(Member.objects.order_by("-id").values_list("external_id", flat=True)[:2])
    assert ids == newest
    second = api.get(first["next"]).json()
    assert not {m["external_id"] for m in second["results"]} & set(ids)


def test_malformed_json_is_400_and_stores_nothing(api):
    response = api.put(
        "/api/v1/members/u-3",
        content=b'{"display_name": ',
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "malformed_json")
    assert not Member.objects.filter(external_id="u-3").exists()


@pytest.mark.parametrize(
    "body",
    [{"email": "not-an-email"}, {"attributes": [1, 2]}, {"joined_at": "yesterday"}, [1, 2], "text"],
)
def test_invalid_fields_are_400_validation_errors(api, body):
    MemberFactory(external_id="u-4", email="keep@example.com")
    assert_error(api.put("/api/v1/members/u-4", json=body), 400, "validation_error")
    assert Member.objects.get(external_id="u-4").email == "keep@example.com"


def test_an_overlong_external_id_is_400(api):
    assert_error(api.put("/api/v1/members/" + "x" * 129, json={}), 400, "invalid_external_id")


def test_a_wrong_content_type_is_415(api):
    response = api.put(
        "/api/v1/members/u-5", content=b"a=b", headers={"Content-Type": "text/plain"}
    )
    assert_error(response, 415, "unsupported_media_type")


def test_a_wrong_method_is_405(api):
    assert_error(api.request("DELETE", "/api/v1/members/u-5"), 405, "method_not_allowed")


def test_an_unknown_api_path_is_404_in_the_error_shape(api):
    assert_error(api.get("/api/v1/nothing-here"), 404, "not_found")


def test_a_member_can_opt_out_of_leaderboards_themselves(api, member_token):
    member = MemberFactory(leaderboard_opt_out=False)
    response = api.as_key(member_token(member)).patch(
        "/api/v1/me", json={"leaderboard_opt_out": True}
    )
    assert response.status_code == 200
    member.refresh_from_db()
    assert member.leaderboard_opt_out is True


@pytest.mark.parametrize(
    "joined_at",
    [
        "9999-12-31T00:00:00Z",
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+05:00",
        "1999-12-31T23:59:59Z",
        "2026-11-20T10:00:00",  # no UTC offset: which instant is meant?
    ],
)
def test_a_join_time_outside_the_accepted_range_or_without_an_offset_is_400(api, joined_at):
    response = api.put("/api/v1/members/alice", json={"joined_at": joined_at})

    error = assert_error(response, 400, "validation_error")
    assert "joined_at" in error["details"]
    assert not Member.objects.exists()


def test_an_event_time_without_an_offset_or_before_2000_is_400(api):
    for occurred_at in ("2026-11-20T10:00:00", "1999-01-01T00:00:00Z", "0001-01-01T00:00:00Z"):
        body = {
            "external_id": "alice",
            "action": "review",
            "idempotency_key": f"k-{occurred_at}",
            "occurred_at": occurred_at,
        }
        error = assert_error(api.post("/api/v1/events", json=body), 400, "validation_error")
        assert "occurred_at" in error["details"]


def test_a_member_enters_the_first_tier_with_their_first_event_not_at_creation(api):
    from tests.factories import make_tiers

    make_tiers(("member", 0), ("gold", 100))
    api.put("/api/v1/members/alice", json={"display_name": "Alice"})
    assert api.get("/api/v1/members/alice").json()["tier"] is None

    api.post(
        "/api/v1/events",
        json={"external_id": "alice", "action": "browse", "idempotency_key": "b-1"},
    )

    assert api.get("/api/v1/members/alice").json()["tier"]["code"] == "member"
