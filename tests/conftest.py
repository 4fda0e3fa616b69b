"""Shared fixtures: real HTTP against a live server, API keys, member tokens."""

import pytest
from django.db import connection

from accounts.scopes import SCOPES
from accounts.services import api_client_create, member_token_issue
from tests.helpers import Api


def pytest_collection_modifyitems(config, items):
    if connection.vendor == "postgresql":
        return
    skip = pytest.mark.skip(reason="needs PostgreSQL: set DATABASE_URL=postgres://…")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def fresh_program_cache():
    """Each test compiles the program afresh: rolled-back tests reuse revision tokens."""
    from loyalty.program import compiled as program

    program._compiled = None
    yield
    program._compiled = None


@pytest.fixture
def api_key(db) -> str:
    """A key holding every scope."""
    _, key = api_client_create(name="host-app", scopes=list(SCOPES))
    return key


@pytest.fixture
def api(live_server, api_key) -> Api:
    return Api(base_url=live_server.url, key=api_key)


@pytest.fixture
def member_token():
    def mint(member, *, ttl_seconds: int | None = None) -> str:
        from accounts.models import ApiClient

        client = ApiClient.objects.filter(is_active=True).first()
        if client is None:
            client, _ = api_client_create(name="token-minter", scopes=list(SCOPES))
        return member_token_issue(member=member, client=client, ttl_seconds=ttl_seconds).token

    return mint
