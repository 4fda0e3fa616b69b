"""The OpenAPI schema is generated from the code and is a valid OpenAPI 3 document."""

import yaml
from django.core.management import call_command
from openapi_spec_validator import validate


def test_the_openapi_schema_validates(tmp_path, db):
    target = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(target), "--validate", "--fail-on-warn")
    schema = yaml.safe_load(target.read_text())
    validate(schema)
    assert "/api/v1/members/{external_id}" in schema["paths"]


def test_the_schema_and_docs_pages_are_served(live_server):
    import httpx

    assert httpx.get(f"{live_server.url}/api/schema/").status_code == 200
    docs = httpx.get(f"{live_server.url}/api/docs/")
    assert docs.status_code == 200
    assert "swagger" in docs.text.lower()


def test_every_path_is_served_by_one_view():
    """No app's path shadows another's: each route appears once in the URL configuration."""
    from collections import Counter

    from django.urls import get_resolver

    routes: Counter = Counter()

    def walk(patterns, prefix: str = "") -> None:
        for pattern in patterns:
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, prefix + str(pattern.pattern))
            else:
                routes[prefix + str(pattern.pattern)] += 1

    walk(get_resolver().url_patterns)
    assert "api/v1/members/<str:external_id>" in routes
    assert [route for route, count in routes.items() if count > 1] == []
