"""A crafted history for the console: members joined on chosen days, events through the engine
back-dated to chosen days, the insight job run as of a chosen instant."""

from datetime import date, datetime, timedelta

import pytest

from loyalty.engine.events import EventInput, record_events
from loyalty.periods import start_of_day
from tests.factories import ActionFactory, MemberFactory, make_key_action

_keys = iter(range(10**9))

CONSOLE_PAGES = [
    "/admin/",
    "/admin/console/cohorts/",
    "/admin/console/churn/",
    "/admin/console/indicators/",
    "/admin/console/funnels/",
]


def at(day: date, hours: float = 12) -> datetime:
    """An instant of a local day."""
    return start_of_day(day) + timedelta(hours=hours)


class History:
    def __init__(self):
        self.pending: list[EventInput] = []

    def member(self, external_id: str, joined: date | datetime, **attributes):
        joined_at = joined if isinstance(joined, datetime) else at(joined, 0.5)
        return MemberFactory(external_id=external_id, joined_at=joined_at, attributes=attributes)

    def event(self, member, action: str, when: date | datetime, **attributes) -> None:
        self.pending.append(
            EventInput(
                external_id=member.external_id,
                action=action,
                idempotency_key=f"h-{next(_keys)}",
                occurred_at=when if isinstance(when, datetime) else at(when),
                attributes=attributes,
            )
        )

    def record(self):
        results = record_events(client=None, events=self.pending)
        assert all(item.error is None for item in results), [r.error for r in results]
        self.pending = []
        return results


@pytest.fixture
def history(db):
    for code in ("register", "check_in", "purchase", "upload_avatar", "browse_item"):
        ActionFactory(code=code)
    make_key_action("check_in", effective_from=at(date(2025, 1, 1), 0))
    return History()
