"""Racing events on PostgreSQL: no cap exceeded, no credit lost, no key used twice."""

import pytest
from django.utils import timezone

from loyalty.engine.events import EventInput, record_event
from loyalty.models import Event, LedgerEntry, MemberStanding
from tests.concurrency import race
from tests.factories import make_rule, make_tiers
from tests.helpers import assert_balances_match_ledger

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WORKERS = 12


def _event(i: int, *, member: str = "racer", key: str | None = None, **attributes) -> EventInput:
    return EventInput(
        external_id=member,
        action="purchase",
        idempotency_key=key or f"race-{i}",
        occurred_at=timezone.now(),
        attributes=attributes,
    )


def test_racing_events_never_exceed_a_cap():
    make_rule("purchase", points_per_occurrence=10, caps=[("day", "occurrences", 5)])
    results = race(WORKERS, lambda i: record_event(client=None, event=_event(i)).outcome)
    assert all(isinstance(r, dict) for r in results), results
    assert sum(1 for r in results if r["points"]) == 5
    assert MemberStanding.objects.get().points == 50
    assert_balances_match_ledger()


def test_racing_events_never_exceed_an_amount_cap():
    make_rule("purchase", unit_attribute="amount", points_per_unit=1, caps=[("day", "points", 250)])
    race(WORKERS, lambda i: record_event(client=None, event=_event(i, amount=40)))
    assert MemberStanding.objects.get().points == 250
    assert_balances_match_ledger()


def test_racing_events_lose_no_credit():
    make_rule("purchase", growth_per_occurrence=3, points_per_occurrence=10)
    make_tiers(("member", 0), ("silver", 20))
    race(WORKERS, lambda i: record_event(client=None, event=_event(i)))
    standing = MemberStanding.objects.get()
    assert (standing.growth, standing.points) == (3 * WORKERS, 10 * WORKERS)
    assert standing.tier.code == "silver"
    assert Event.objects.count() == WORKERS
    assert_balances_match_ledger()


def test_racing_retries_of_one_key_credit_once():
    make_rule("purchase", points_per_occurrence=10)
    same = _event(0, key="same")
    results = race(WORKERS, lambda i: record_event(client=None, event=same).outcome)
    assert all(isinstance(r, dict) for r in results), results
    assert len({r["points"] for r in results}) == 1
    assert Event.objects.count() == 1
    assert LedgerEntry.objects.filter(currency="points").count() == 1


def test_racing_new_members_each_get_one_standing():
    make_rule("purchase", points_per_occurrence=10)
    race(WORKERS, lambda i: record_event(client=None, event=_event(i, member=f"new-{i % 3}")))
    assert MemberStanding.objects.count() == 3
    assert sorted(MemberStanding.objects.values_list("points", flat=True)) == [40, 40, 40]
    assert_balances_match_ledger()


def test_racing_first_events_grant_one_welcome_gift():
    from loyalty.models import Gift, GiftGrant

    Gift.objects.create(kind="welcome", points=100)
    make_rule("purchase", points_per_occurrence=10)
    race(WORKERS, lambda i: record_event(client=None, event=_event(i)))
    assert GiftGrant.objects.count() == 1
    assert MemberStanding.objects.get().points == 100 + 10 * WORKERS
    assert_balances_match_ledger()


def test_racing_birthday_jobs_grant_one_gift():
    from loyalty.activity.states import grant_birthday_gifts
    from loyalty.models import Gift, GiftGrant
    from tests.factories import MemberFactory

    Gift.objects.create(kind="birthday", points=50)
    today = timezone.localdate()
    MemberFactory(
        external_id="bday",
        birthday=today.replace(year=1990) if (today.month, today.day) != (2, 29) else today,
    )
    race(4, lambda i: grant_birthday_gifts())
    assert GiftGrant.objects.count() == 1
    assert_balances_match_ledger()
