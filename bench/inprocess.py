"""The engine in this process, as production settings run it, for measures that leave the web
server, the client and the network out: Django's test client calling the WSGI handler."""

import os
from typing import Any


def engine(client_name: str) -> tuple[Any, str, list[str]]:
    """Set the engine up in process: Django's test client, a new API key with every scope, and
    the benchmark data's members' host ids in primary-key order."""
    os.environ.update(
        DEBUG="false",
        SECRET_KEY="bench-" + "x" * 50,
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="false",
        LOG_LEVEL="ERROR",
        CELERY_BROKER_URL="",
        LOYALTY_RATE_LIMIT_PER_MINUTE="1000000000",
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.test import Client

    from accounts.models import Member
    from accounts.scopes import SCOPES
    from accounts.services import api_client_create

    _, key = api_client_create(name=client_name, scopes=list(SCOPES))
    members = list(Member.objects.order_by("pk").values_list("external_id", flat=True)[:10_000])
    return Client(), key, members
