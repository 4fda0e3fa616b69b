"""The event, member summary and ledger endpoints, end to end over real HTTP."""

import json
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts import scopes
from accounts.models import Member
from accounts.services import api_client_create
from loyalty.models import Event, EventBatchJob, LedgerEntry
from tests.factories import MemberFactory, make_rule, make_tiers
from tests.helpers import assert_balances_match_ledger, assert_error


@pytest.fixture
def program(db):
    make_rule(
        "purchase",
        code="purchase-base",
        growth_per_occurrence=10,
        unit_attribute="amount",
        points_per_unit=1,
    )
    make_tiers(
        ("member", 0),
        ("silver", 20, {"points_multiplier": {"multiplier": "1.5"}, "host": {"shipping": "free"}}),
    )


def purchase(key="o-1", member="alice", amount="120.50", **extra):
    return {
        "external_id": member,
        "action": "purchase",
        "idempotency_key": key,
        "attributes": {"amount": amount},
        **extra,
    }


def test_an_event_answers_what_it_credited(api, program):
    response = api.post("/api/v1/events", json=purchase())
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["growth"], body["points"], body["status"]) == (10, 120, "credited")
    assert body["credits"] == [
        {"rule": "purchase-base", "rule_version": 1, "growth": 10, "points": 120, "capped": False}
    ]
    assert body["tier"] == "member"
    assert body["event_id"] == Event.objects.get().pk


def test_a_retry_returns_200_with_the_same_outcome(api, program):
    first = api.post("/api/v1/events", json=purchase()).json()
    again = api.post("/api/v1/events", json=purchase())
    assert again.status_code == 200
    assert again.json() == {**first, "replayed": True}
    assert LedgerEntry.objects.count() == 2


def test_the_same_key_with_another_body_is_409(api, program):
    api.post("/api/v1/events", json=purchase())
    error = assert_error(
        api.post("/api/v1/events", json=purchase(amount="1")), 409, "idempotency_conflict"
    )
    assert error["details"] == {"idempotency_key": "o-1"}


def test_the_key_may_come_in_the_idempotency_key_header(api, program):
    body = purchase()
    del body["idempotency_key"]
    response = api.post("/api/v1/events", json=body, headers={"Idempotency-Key": "hdr-1"})
    assert response.status_code == 201
    assert response.json()["idempotency_key"] == "hdr-1"


def test_keys_are_per_client(api, program):
    _, other = api_client_create(name="other-shop", scopes=[scopes.EVENTS_WRITE])
    assert api.post("/api/v1/events", json=purchase()).status_code == 201
    assert api.as_key(other).post("/api/v1/events", json=purchase()).status_code == 201


def test_a_dry_run_stores_nothing(api, program):
    response = api.post("/api/v1/events", params={"dry_run": "true"}, json=purchase())
    assert response.status_code == 200
    assert response.json()["dry_run"] is True
    assert response.json()["points"] == 120
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "purchase", "idempotency_key": "k"}, "external_id"),
        ({"external_id": "a", "idempotency_key": "k"}, "action"),
        ({"external_id": "a", "action": "purchase"}, "idempotency_key"),
        (
            {"external_id": "a", "action": "purchase", "idempotency_key": "k", "attributes": [1]},
            "attributes",
        ),
        (
            {
                "external_id": "a",
                "action": "purchase",
                "idempotency_key": "k",
                "occurred_at": "soon",
            },
            "occurred_at",
        ),
        # A lone surrogate is no text at all; other non-ASCII ids are fine (below).
        ({"external_id": "a\ud800", "action": "purchase", "idempotency_key": "k"}, "external_id"),
        (
            {"external_id": "a", "action": "purchase", "idempotency_key": "k\udfff"},
            "idempotency_key",
        ),
    ],
)
def test_bad_events_are_400_with_the_field_named(api, program, body, field):
    # Sent as ASCII JSON (a surrogate as its \u escape, which a UTF-8 body cannot carry).
    sent = api.post(
        "/api/v1/events", content=json.dumps(body), headers={"Content-Type": "application/json"}
    )
    error = assert_error(sent, 400, "validation_error")
    assert field in error["details"]
    assert not Event.objects.exists()


def test_non_ascii_ids_and_keys_are_taken_as_given(api, program):
    response = api.post("/api/v1/events", json=purchase(member="zoë-ü", key="キー-1"))
    assert response.status_code == 201, response.text
    assert Event.objects.get().idempotency_key == "キー-1"


def test_an_event_from_the_future_is_refused(api, program):
    later = (timezone.now() + timedelta(hours=1)).isoformat()
    error = assert_error(
        api.post("/api/v1/events", json=purchase(occurred_at=later)), 400, "validation_error"
    )
    assert "occurred_at" in error["details"]


def test_events_need_the_events_write_scope(api, program):
    _, reader = api_client_create(name="reader", scopes=[scopes.MEMBERS_READ])
    assert_error(api.as_key(reader).post("/api/v1/events", json=purchase()), 403, "missing_scope")


def test_a_batch_gives_a_result_per_item_and_one_bad_item_sinks_nothing(api, program):
    items = [
        purchase(key="b-1"),
        {"external_id": "bob"},
        purchase(key="b-2", member="bob"),
        purchase(key="b-1", amount="9"),
    ]
    response = api.post("/api/v1/events/batch", json={"events": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["succeeded"], body["failed"]) == (2, 2)
    assert [r["ok"] for r in body["results"]] == [True, False, True, False]
    assert body["results"][1]["error"]["code"] == "validation_error"
    assert body["results"][3]["error"]["code"] == "idempotency_conflict"
    assert Event.objects.count() == 2
    assert_balances_match_ledger()


def test_a_batch_over_1000_items_is_refused_whole(api, program):
    items = [purchase(key=f"k-{i}") for i in range(1001)]
    assert_error(api.post("/api/v1/events/batch", json={"events": items}), 400, "validation_error")
    assert not Event.objects.exists()


def test_an_async_batch_is_accepted_then_readable(api, program):
    response = api.post(
        "/api/v1/events/batch",
        params={"async": "true"},
        json={"events": [purchase(key=f"a-{i}") for i in range(3)]},
    )
    assert response.status_code == 202, response.text
    job_id = response.json()["job_id"]
    job = api.get(f"/api/v1/events/batch/{job_id}").json()
    # Without a broker the task runs inline after commit, so the job is already done.
    assert (job["status"], job["succeeded"], job["failed"]) == ("done", 3, 0)
    assert len(job["results"]) == 3
    assert EventBatchJob.objects.get().status == "done"


def test_the_member_summary_shows_buckets_tier_privileges_and_the_next_tier(api, program):
    api.post("/api/v1/events", json=purchase())
    body = api.get("/api/v1/members/alice").json()
    assert body["external_id"] == "alice"
    assert body["balances"] == {
        "points": {
            "spendable": 120,
            "pending": 0,
            "lifetime_earned": 120,
            "lifetime_spent": 0,
            "lifetime_expired": 0,
        },
        "growth": 10,
    }
    assert body["tier"]["code"] == "member"
    assert body["next_tier"]["code"] == "silver"
    assert body["next_tier"]["growth_needed"] == 10
    api.post("/api/v1/events", json=purchase(key="o-2"))
    upgraded = api.get("/api/v1/members/alice").json()
    assert upgraded["tier"]["code"] == "silver"
    assert {p["code"] for p in upgraded["tier"]["privileges"]} == {"points_multiplier", "host"}
    assert upgraded["next_tier"] is None


def test_a_member_without_events_has_empty_buckets(api, program):
    MemberFactory(external_id="quiet")
    body = api.get("/api/v1/members/quiet").json()
    assert body["balances"]["points"]["spendable"] == 0
    assert body["tier"] is None
    assert body["next_tier"]["code"] == "member"


def test_the_ledger_is_cursor_paginated_newest_first(api, program):
    for i in range(3):
        api.post("/api/v1/events", json=purchase(key=f"l-{i}", amount=str(i + 1)))
    page = api.get("/api/v1/members/alice/ledger", params={"page_size": 4}).json()
    ids = [entry["id"] for entry in page["results"]]
    assert ids == sorted(ids, reverse=True)
    assert len(ids) == 4
    assert page["results"][0]["rule"] == "purchase-base"
    rest = api.get(page["next"]).json()["results"]
    assert len(rest) == 2
    assert not set(ids) & {entry["id"] for entry in rest}


def test_a_member_reads_their_own_summary_and_ledger_with_a_token(api, program, member_token):
    api.post("/api/v1/events", json=purchase())
    api.post("/api/v1/events", json=purchase(key="bob-1", member="bob"))
    from accounts.models import Member

    token = member_token(Member.objects.get(external_id="alice"))
    me = api.as_key(token).get("/api/v1/me").json()
    assert me["external_id"] == "alice"
    assert me["balances"]["points"]["spendable"] == 120
    ledger = api.as_key(token).get("/api/v1/me/ledger").json()["results"]
    assert {entry["event_id"] for entry in ledger} == set(
        Event.objects.filter(member__external_id="alice").values_list("pk", flat=True)
    )


def test_an_unknown_members_ledger_is_404(api, program):
    assert_error(api.get("/api/v1/members/ghost/ledger"), 404, "member_not_found")


def test_a_stored_event_can_be_read_back(api, program):
    event_id = api.post("/api/v1/events", json=purchase()).json()["event_id"]
    body = api.get(f"/api/v1/events/{event_id}").json()
    assert body["points"] == 120
    assert_error(api.get("/api/v1/events/999999"), 404, "not_found")


def test_the_host_app_reverses_an_event_in_part_then_in_full(api, program):
    event_id = api.post("/api/v1/events", json=purchase(amount="200.00")).json()["event_id"]
    partial = api.post(
        f"/api/v1/events/{event_id}/reverse",
        json={"idempotency_key": "refund-1", "amount": "50.00"},
    )
    assert partial.status_code == 201, partial.text
    assert partial.json()["points"] == 50
    retried = api.post(
        f"/api/v1/events/{event_id}/reverse",
        json={"idempotency_key": "refund-1", "amount": "50.00"},
    )
    assert retried.status_code == 200
    assert retried.json()["replayed"] is True
    rest = api.post(
        f"/api/v1/events/{event_id}/reverse", headers={"Idempotency-Key": "refund-2"}, json={}
    )
    assert rest.json()["points"] == 150
    assert api.get("/api/v1/members/alice").json()["balances"]["points"]["spendable"] == 0
    assert_balances_match_ledger()


def test_reversal_errors_have_stable_codes(api, program):
    event_id = api.post("/api/v1/events", json=purchase(amount="100.00")).json()["event_id"]
    url = f"/api/v1/events/{event_id}/reverse"
    assert_error(
        api.post(url, json={"idempotency_key": "a", "amount": "500"}), 422, "amount_too_large"
    )
    assert_error(
        api.post(url, json={"idempotency_key": "b", "amount": "-1"}), 400, "validation_error"
    )
    assert_error(api.post(url, json={"amount": "1"}), 400, "validation_error")
    api.post(url, json={"idempotency_key": "c"})
    assert_error(
        api.post(url, json={"idempotency_key": "c", "amount": "1"}), 409, "idempotency_conflict"
    )
    assert_error(api.post(url, json={"idempotency_key": "d"}), 422, "already_reversed")
    assert_error(
        api.post("/api/v1/events/999999/reverse", json={"idempotency_key": "e"}),
        404,
        "event_not_found",
    )
    _, other = api_client_create(name="other", scopes=[scopes.EVENTS_WRITE])
    assert_error(api.as_key(other).post(url, json={"idempotency_key": "f"}), 404, "event_not_found")


@pytest.mark.parametrize(
    "amount", ["abc", "-1", "NaN", "Infinity", "1e999999", "1E+400000", "1e999999999", "1e12"]
)
def test_an_unusable_amount_is_refused_and_leaves_nothing_behind(api, program, amount):
    response = api.post("/api/v1/events", json=purchase(amount=amount))

    error = assert_error(response, 400, "invalid_attribute")
    assert error["details"] == {"attribute": "amount"}
    assert not Event.objects.exists()
    assert not Member.objects.exists()


def test_an_absurd_amount_is_refused_before_any_arithmetic(program, monkeypatch):
    """The refusal comes from the bounds check, never from rounding the number."""
    from loyalty.engine.events import EventInput, InvalidAttribute, record_event
    from loyalty.program import rules

    def no_arithmetic(*args, **kwargs):
        raise AssertionError("amounts() ran on a refused event")

    monkeypatch.setattr(rules.CompiledRule, "amounts", no_arithmetic)
    for amount in ("1e999999", "1E+400000", "1e999999999", "9" * 4000):
        event = EventInput(
            external_id="alice",
            action="purchase",
            idempotency_key=f"k-{len(amount)}-{amount[:5]}",
            attributes={"amount": amount},
        )
        with pytest.raises(InvalidAttribute):
            record_event(client=None, event=event)


def test_a_refused_batch_item_leaves_nothing_behind_and_sinks_nothing(api, program):
    items = [purchase(key="o-1", member="bob", amount="abc"), purchase(key="o-2", member="carol")]

    response = api.post("/api/v1/events/batch", json={"events": items})

    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["ok"] for r in results] == [False, True]
    assert results[0]["error"]["code"] == "invalid_attribute"
    assert list(Member.objects.values_list("external_id", flat=True)) == ["carol"]
    assert list(Event.objects.values_list("idempotency_key", flat=True)) == ["o-2"]


def test_a_missing_amount_is_not_refused_but_skipped(api, program):
    response = api.post("/api/v1/events", json={**purchase(), "attributes": {}})

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["points"], body["growth"], body["reason"]) == (0, 0, "invalid_attribute")


def test_an_idempotency_conflict_creates_no_member(api, program):
    assert api.post("/api/v1/events", json=purchase(key="o-1", member="alice")).status_code == 201

    response = api.post("/api/v1/events", json=purchase(key="o-1", member="mallory"))

    assert_error(response, 409, "idempotency_conflict")
    assert not Member.objects.filter(external_id="mallory").exists()
