"""Hostile input over real HTTP: what the database cannot store, nests too deep or weighs too
much is a clear 4xx in the error shape, never a 500, and sinks nothing else of a batch."""

import json

import pytest

from accounts.models import Member
from loyalty.models import Event, EventBatchJob
from rewards.models import Redemption
from tests.factories import give_points, make_reward, make_rule
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db

# Raw JSON texts: what a JSON encoder in Python would never write.
NUL = '"a\\u0000b"'
SURROGATE = '"\\ud800"'
HUGE_NUMBER = "1e400"


@pytest.fixture
def program(db):
    make_rule("purchase", unit_attribute="amount", points_per_unit=1)


def event_text(key: str, value: str, member: str = "alice") -> str:
    return (
        f'{{"external_id": "{member}", "action": "purchase", "idempotency_key": "{key}", '
        f'"attributes": {{"amount": "10", "note": {value}}}}}'
    )


def post_text(api, path: str, text: str, **kwargs):
    return api.post(
        path, content=text.encode(), headers={"Content-Type": "application/json"}, **kwargs
    )


@pytest.mark.parametrize("value", [NUL, SURROGATE, HUGE_NUMBER, f'{{"k": [{NUL}]}}'])
def test_event_attributes_the_database_cannot_store_are_a_400(api, program, value):
    response = post_text(api, "/api/v1/events", event_text("e-1", value))

    error = assert_error(response, 400, "validation_error")
    assert "attributes" in error["details"]
    assert not Event.objects.exists()
    assert not Member.objects.exists()


def test_a_nul_in_an_attributes_key_is_a_400(api, program):
    text = (
        '{"external_id": "a", "action": "purchase", "idempotency_key": "k", '
        '"attributes": {"x\\u0000": 1}}'
    )
    assert_error(post_text(api, "/api/v1/events", text), 400, "validation_error")


@pytest.mark.parametrize("value", [NUL, SURROGATE, HUGE_NUMBER])
def test_member_attributes_the_database_cannot_store_are_a_400(api, value):
    response = api.put(
        "/api/v1/members/alice",
        content=f'{{"attributes": {{"x": {value}}}}}'.encode(),
        headers={"Content-Type": "application/json"},
    )

    assert "attributes" in assert_error(response, 400, "validation_error")["details"]
    assert not Member.objects.exists()


@pytest.mark.parametrize("value", [NUL, SURROGATE, HUGE_NUMBER])
def test_redemption_details_the_database_cannot_store_are_a_400(api, member_token, value):
    make_reward("gift", cost_points=10)
    member = give_points("alice", 100)
    body = f'"reward": "gift", "idempotency_key": "r-1", "details": {{"address": {value}}}'

    as_host = post_text(api, "/api/v1/redemptions", f'{{"external_id": "alice", {body}}}')
    as_member = post_text(api.as_key(member_token(member)), "/api/v1/me/redemptions", f"{{{body}}}")

    for response in (as_host, as_member):
        assert "details" in assert_error(response, 400, "validation_error")["details"]
    assert not Redemption.objects.exists()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/members/a%00b",
        "/api/v1/members/a%00b/ledger",
        "/api/v1/rewards?member=a%00b",
        "/api/v1/leaderboards/x%00",
        "/api/v1/members?cursor=%00",
    ],
)
def test_a_nul_in_a_path_or_a_query_parameter_is_a_400(api, path):
    assert_error(api.get(path), 400, "validation_error")


def test_one_bad_item_sinks_nothing_else_of_a_batch(api, program):
    items = [
        event_text("good-1", '"ok"', member="ann"),
        event_text("nul", NUL, member="bob"),
        event_text("surrogate", SURROGATE, member="cid"),
        event_text("huge", HUGE_NUMBER, member="dee"),
        event_text("good-2", '"ok"', member="eve"),
    ]

    response = post_text(api, "/api/v1/events/batch", f'{{"events": [{", ".join(items)}]}}')

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [True, False, False, False, True]
    assert {r["error"]["code"] for r in results if not r["ok"]} == {"validation_error"}
    assert sorted(Event.objects.values_list("idempotency_key", flat=True)) == ["good-1", "good-2"]
    assert sorted(Member.objects.values_list("external_id", flat=True)) == ["ann", "eve"]


def test_one_bad_item_sinks_nothing_else_of_an_async_batch(api, program):
    items = [event_text("good-1", '"ok"'), event_text("nul", NUL), event_text("huge", HUGE_NUMBER)]

    response = post_text(
        api, "/api/v1/events/batch", f'{{"events": [{", ".join(items)}]}}', params={"async": "1"}
    )

    assert response.status_code == 202, response.text
    job = api.get(f"/api/v1/events/batch/{response.json()['job_id']}").json()
    assert job["status"] == "done"
    assert [r["ok"] for r in job["results"]] == [True, False, False]
    assert job["results"][1]["error"]["code"] == "validation_error"
    assert list(Event.objects.values_list("idempotency_key", flat=True)) == ["good-1"]
    assert EventBatchJob.objects.get().failed == 2


def test_json_nested_a_thousand_levels_deep_is_malformed(api, program):
    deep = "[" * 1000 + "]" * 1000
    response = post_text(api, "/api/v1/events", f'{{"external_id": "a", "x": {deep}}}')
    assert_error(response, 400, "malformed_json")


def test_attributes_nested_deeper_than_the_limit_are_a_400(api, program):
    nested = '{"a": ' * 20 + "1" + "}" * 20
    response = post_text(api, "/api/v1/events", event_text("k", nested))
    assert "attributes" in assert_error(response, 400, "validation_error")["details"]


def test_a_body_over_the_limit_is_a_413_in_the_error_shape(api, program, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10_000
    response = post_text(api, "/api/v1/events", event_text("k", json.dumps("x" * 20_000)))

    error = assert_error(response, 413, "payload_too_large")
    assert error["details"] == {"limit_bytes": 10_000}


def test_an_attribute_blob_over_the_field_limit_is_a_400(api, program):
    blob = json.dumps("x" * (17 * 1024))
    response = post_text(api, "/api/v1/events", event_text("k", blob))
    assert "attributes" in assert_error(response, 400, "validation_error")["details"]
    assert not Event.objects.exists()


def test_a_batch_job_is_read_with_the_events_read_scope(api, program):
    from accounts import scopes
    from accounts.services import api_client_create

    posted = api.post(
        "/api/v1/events/batch",
        json={"events": [json.loads(event_text("k", '"ok"'))]},
        params={"async": "1"},
    )
    job_id = posted.json()["job_id"]
    _, reader = api_client_create(name="reader", scopes=[scopes.EVENTS_READ])
    _, writer = api_client_create(name="writer", scopes=[scopes.EVENTS_WRITE])

    # Another client's job is not found; a key without events:read is refused.
    assert_error(api.as_key(reader).get(f"/api/v1/events/batch/{job_id}"), 404, "not_found")
    assert_error(api.as_key(writer).get(f"/api/v1/events/batch/{job_id}"), 403, "missing_scope")
    assert api.get(f"/api/v1/events/batch/{job_id}").status_code == 200
