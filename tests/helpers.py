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

    from loyalty.ledger.entries import bucket_deltas
    from loyalty.models import LedgerEntry, MemberStanding

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


def form_fields(html: str, *, containing: str) -> dict[str, list[str]]:
    """What a browser would submit, untouched, from the page's form that holds a field named
    ``containing``: its inputs' values (checkboxes and radios only when checked), its selects'
    selected options, its textareas' text. Names map to lists, as a form may repeat a name."""
    from html.parser import HTMLParser

    class Forms(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.forms: list[dict[str, list[str]]] = []
            self.inside = False
            self.select: str | None = None
            self.chosen = False
            self.first_option: str | None = None
            self.textarea: str | None = None

        def add(self, name: str | None, value: str) -> None:
            if name and self.inside:
                self.forms[-1].setdefault(name, []).append(value)

        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "form":
                self.inside = True
                self.forms.append({})
            elif tag == "input":
                kind = (a.get("type") or "text").lower()
                if kind in ("submit", "button", "file", "image", "reset"):
                    return
                if kind in ("checkbox", "radio") and "checked" not in a:
                    return
                self.add(a.get("name"), a.get("value") or ("on" if kind == "checkbox" else ""))
            elif tag == "select":
                self.select, self.chosen, self.first_option = a.get("name"), False, None
            elif tag == "option" and self.select is not None:
                value = a.get("value", "")
                if self.first_option is None:
                    self.first_option = value
                if "selected" in a and not self.chosen:
                    self.add(self.select, value)
                    self.chosen = True
            elif tag == "textarea":
                self.textarea = a.get("name")
                self.add(self.textarea, "")

        def handle_data(self, data):
            if self.textarea and self.inside:
                self.forms[-1][self.textarea][-1] += data

        def handle_endtag(self, tag):
            if tag == "select" and self.select is not None:
                if not self.chosen:
                    self.add(self.select, self.first_option or "")
                self.select = None
            elif tag == "textarea":
                self.textarea = None
            elif tag == "form":
                self.inside = False

    parser = Forms()
    parser.feed(html)
    return next(form for form in parser.forms if containing in form)
