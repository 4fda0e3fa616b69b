"""Rate limits over real HTTP: per API key (its own limit or the default), a batch counting
its events, per member token; 429 rate_limited with Retry-After in the error shape."""

import pytest

from accounts import scopes
from accounts.services import api_client_create
from tests.factories import MemberFactory
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


def test_a_key_over_its_own_limit_gets_429_with_retry_after(api):
    _, key = api_client_create(name="tight", scopes=[scopes.MEMBERS_READ], rate_limit_per_minute=3)
    client = api.as_key(key)
    assert [client.get("/api/v1/members").status_code for _ in range(3)] == [200] * 3

    response = client.get("/api/v1/members")

    error = assert_error(response, 429, "rate_limited")
    assert 0 < int(response.headers["Retry-After"]) <= 60
    assert 0 < error["details"]["retry_after_seconds"] <= 60
    # Another key keeps its own budget.
    assert api.get("/api/v1/members").status_code == 200


def test_a_batch_counts_its_events(api):
    _, key = api_client_create(
        name="batcher", scopes=[scopes.EVENTS_WRITE], rate_limit_per_minute=5
    )
    events = [
        {"external_id": "a", "action": "review", "idempotency_key": f"k{i}"} for i in range(6)
    ]

    response = api.as_key(key).post("/api/v1/events/batch", json={"events": events})

    assert_error(response, 429, "rate_limited")


def test_the_default_limit_applies_to_keys_without_their_own(api, settings):
    settings.LOYALTY_RATE_LIMIT_PER_MINUTE = 2
    _, key = api_client_create(name="plain", scopes=[scopes.MEMBERS_READ])
    statuses = [api.as_key(key).get("/api/v1/members").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_a_member_token_has_its_own_limit(api, member_token, settings):
    settings.LOYALTY_MEMBER_RATE_LIMIT_PER_MINUTE = 2
    token = member_token(MemberFactory())
    statuses = [api.as_key(token).get("/api/v1/me").status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
