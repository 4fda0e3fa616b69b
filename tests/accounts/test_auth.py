"""Authentication and scopes, over real HTTP."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from accounts import scopes
from accounts.models import ApiClient
from accounts.services import (
    api_client_authenticate,
    api_client_create,
    api_client_revoke,
    api_client_rotate_key,
    member_token_issue,
)
from tests.factories import MemberFactory
from tests.helpers import assert_error


def test_a_request_without_a_key_is_401_in_the_error_shape(api):
    response = api.as_key(None).get("/api/v1/members")
    assert_error(response, 401, "not_authenticated")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("credential", ["lk_nope_nope", "lk_", "garbage", "mt_forged"])
def test_a_bad_credential_is_401(api, credential):
    assert_error(api.as_key(credential).get("/api/v1/members"), 401, "authentication_failed")


def test_a_key_lacking_the_scope_is_403_naming_the_missing_scope(api):
    _, key = api_client_create(name="reader", scopes=[scopes.EVENTS_WRITE])
    error = assert_error(api.as_key(key).get("/api/v1/members"), 403, "missing_scope")
    assert error["details"] == {"missing_scopes": [scopes.MEMBERS_READ]}


def test_a_key_with_the_scope_is_200(api):
    _, key = api_client_create(name="reader", scopes=[scopes.MEMBERS_READ])
    response = api.as_key(key).get("/api/v1/members")
    assert response.status_code == 200
    assert response.json()["results"] == []


def test_scopes_are_checked_per_method(api):
    _, key = api_client_create(name="reader", scopes=[scopes.MEMBERS_READ])
    response = api.as_key(key).put("/api/v1/members/m1", json={})
    assert_error(response, 403, "missing_scope")


def test_a_revoked_key_stops_working_at_once(api, api_key):
    client = ApiClient.objects.get()
    api_client_revoke(client=client)
    assert_error(api.get("/api/v1/members"), 401, "authentication_failed")


def test_a_rotated_key_replaces_the_old_one(db):
    client, old_key = api_client_create(name="c", scopes=[])
    new_key = api_client_rotate_key(client=client)
    assert api_client_authenticate(key=old_key) is None
    assert api_client_authenticate(key=new_key) == client


def test_the_key_is_stored_only_as_a_hash(db):
    client, key = api_client_create(name="c", scopes=[])
    secret = key.split("_", 2)[2]
    stored = ApiClient.objects.filter(pk=client.pk).values()[0]
    assert all(secret not in str(value) for value in stored.values())


def test_a_key_with_the_right_prefix_but_wrong_secret_fails(db):
    client, key = api_client_create(name="c", scopes=[])
    assert api_client_authenticate(key=key[:-1] + ("A" if key[-1] != "A" else "B")) is None


def test_unknown_scopes_are_refused(db):
    from core.errors import InvalidInput

    with pytest.raises(InvalidInput):
        api_client_create(name="c", scopes=["members:read", "root"])


def test_create_api_client_command_prints_a_working_key(db, capsys):
    call_command("create_api_client", "shop", "--scopes", "members:read,events:write")
    key = capsys.readouterr().out.strip()
    client = api_client_authenticate(key=key)
    assert client.name == "shop"
    assert client.scopes == ["events:write", "members:read"]


# --- member tokens ----------------------------------------------------------------------------


def test_the_host_app_mints_a_member_token_that_opens_me(api):
    member = MemberFactory(external_id="alice")
    response = api.post("/api/v1/members/alice/token", json={"ttl_seconds": 120})
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    me = api.as_key(token).get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["external_id"] == member.external_id


def test_a_member_token_sees_only_its_own_member(api, member_token):
    alice = MemberFactory(external_id="alice")
    MemberFactory(external_id="bob")
    as_alice = api.as_key(member_token(alice))
    assert_error(as_alice.get("/api/v1/members/bob"), 403, "member_token_not_allowed")
    assert_error(as_alice.get("/api/v1/members"), 403, "member_token_not_allowed")
    assert as_alice.get("/api/v1/me").json()["external_id"] == "alice"


def test_an_api_key_cannot_call_me(api):
    assert_error(api.get("/api/v1/me"), 403, "member_token_required")


def test_an_expired_member_token_is_401(api, member_token, monkeypatch):
    token = member_token(MemberFactory(), ttl_seconds=60)
    later = timezone.now() + timedelta(seconds=61)
    monkeypatch.setattr("accounts.services.timezone.now", lambda: later)
    from accounts.services import member_token_authenticate

    assert member_token_authenticate(token=token) is None


def test_a_member_token_dies_with_the_client_that_minted_it(api):
    member = MemberFactory()
    client, _ = api_client_create(name="minter", scopes=[scopes.MEMBERS_TOKEN])
    token = member_token_issue(member=member, client=client).token
    assert api.as_key(token).get("/api/v1/me").status_code == 200
    api_client_revoke(client=client)
    assert_error(api.as_key(token).get("/api/v1/me"), 401, "authentication_failed")


def test_a_member_token_dies_when_the_key_that_minted_it_is_rotated(api):
    member = MemberFactory()
    client, _ = api_client_create(name="minter", scopes=[scopes.MEMBERS_TOKEN])
    token = member_token_issue(member=member, client=client).token
    assert api.as_key(token).get("/api/v1/me").status_code == 200

    api_client_rotate_key(client=client)

    assert_error(api.as_key(token).get("/api/v1/me"), 401, "authentication_failed")
    fresh = member_token_issue(member=member, client=client).token
    assert api.as_key(fresh).get("/api/v1/me").status_code == 200


def test_a_member_token_dies_when_the_member_is_erased(api, member_token):
    from loyalty.engine.data_rights import member_erase

    member = MemberFactory(external_id="alice")
    token = member_token(member)
    assert api.as_key(token).get("/api/v1/me").status_code == 200

    member_erase(member=member)

    assert_error(api.as_key(token).get("/api/v1/me"), 401, "authentication_failed")


def test_a_tampered_member_token_is_401(api, member_token):
    token = member_token(MemberFactory())
    tampered = token[:-2] + ("aa" if not token.endswith("aa") else "bb")
    assert_error(api.as_key(tampered).get("/api/v1/me"), 401, "authentication_failed")


def test_minting_a_token_for_an_unknown_member_is_404(api):
    assert_error(api.post("/api/v1/members/ghost/token", json={}), 404, "member_not_found")


def test_a_token_lifetime_out_of_range_is_400(api):
    MemberFactory(external_id="alice")
    error = assert_error(
        api.post("/api/v1/members/alice/token", json={"ttl_seconds": 10**9}),
        400,
        "validation_error",
    )
    assert "ttl_seconds" in error["details"]


@pytest.mark.parametrize("debug", [False, True])
def test_an_unknown_api_path_answers_in_the_error_shape_even_with_debug_on(api, settings, debug):
    settings.DEBUG = debug
    for method, path in (("GET", "/api/v1/nope"), ("POST", "/api/v2/events"), ("GET", "/api/")):
        response = api.request(method, path)
        assert response.headers["content-type"] == "application/json", path
        assert_error(response, 404, "not_found")
