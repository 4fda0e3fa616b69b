from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from loyalty.engine.events import EventInput, record_event

_counter = iter(range(10**9))


@pytest.fixture
def earn(db):
    """Record an event through the service; a fresh idempotency key unless one is given."""

    def record(
        external_id="m1",
        action="purchase",
        *,
        key=None,
        at=None,
        dry_run=False,
        client=None,
        **attributes,
    ):
        event = EventInput(
            external_id=external_id,
            action=action,
            idempotency_key=key or f"k-{next(_counter)}",
            occurred_at=at,
            attributes=attributes,
        )
        return record_event(client=client, event=event, dry_run=dry_run).outcome

    return record


def local(*args, tz="UTC") -> datetime:
    return datetime(*args, tzinfo=ZoneInfo(tz))
