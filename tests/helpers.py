"""Helpers for tests: a real HTTP client and the error-shape assertion."""

from dataclasses import dataclass
from typing import Any

import httpx


@dataclass
class Api:
    """A real HTTP client for the live server; ``key`` is sent as the bearer credential."""

    base_url: str
    key: str | None = None

    def request(self, method: str, path: str, *, key: str | None = None, **kwargs: Any):
        headers = kwargs.pop("headers", {})
        credential = key if key is not None else self.key
        if credential:
            headers.setdefault("Authorization", f"Bearer {credential}")
        with httpx.Client(base_url=self.base_url, timeout=30) as client:
            return client.request(method, path, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any):
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any):
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any):
        return self.request("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any):
        return self.request("PATCH", path, **kwargs)

    def as_key(self, key: str | None) -> "Api":
        return Api(base_url=self.base_url, key=key)


def assert_error(response, status: int, code: str) -> dict:
    """The one error shape, with the expected status and stable code."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"]
    return body["error"]


def assert_balances_match_ledger() -> None:
    """Every member's cached buckets equal the sums of their ledger entries."""
    from collections import defaultdict

    from loyalty.models import LedgerEntry, MemberStanding
    from loyalty.services.ledger import bucket_deltas

    by_member = defaultdict(list)
    for member_id, currency, kind, pending, amount in LedgerEntry.objects.values_list(
        "member_id", "currency", "kind", "pending", "amount"
    ):
        by_member[member_id].append((currency, kind, pending, amount))
    for standing in MemberStanding.objects.all():
        expected = bucket_deltas(by_member.pop(standing.pk, []))
        actual = {name: getattr(standing, name) for name in expected}
        assert actual == expected, f"member {standing.pk}: {actual} != ledger {expected}"
    assert not by_member, f"ledger entries without a standing: {list(by_member)}"
