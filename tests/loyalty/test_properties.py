"""Property: whatever events arrive, in whatever order and at whatever times, no cap is
exceeded and balances equal the ledger."""

from datetime import timedelta

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from loyalty.engine.events import EventInput, record_event
from loyalty.models import LedgerEntry, RuleCounter
from loyalty.periods import period_start
from tests.factories import make_rule
from tests.helpers import assert_balances_match_ledger
from tests.loyalty.conftest import local

pytestmark = pytest.mark.django_db

START = local(2026, 1, 1)
events = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=60 * 24 * 20),  # minutes after START
        st.integers(min_value=0, max_value=500),  # amount
        st.sampled_from(["m1", "m2"]),
    ),
    max_size=40,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=events)
def test_no_order_of_events_exceeds_a_cap(django_db_blocker, events):
    from django.db import transaction

    with transaction.atomic():
        rule = make_rule(
            "purchase",
            unit_attribute="amount",
            points_per_unit=1,
            growth_per_occurrence=1,
            caps=[("day", "occurrences", 3), ("week", "points", 700), ("lifetime", "growth", 25)],
        )
        for index, (minutes, amount, member) in enumerate(events):
            record_event(
                client=None,
                event=EventInput(
                    external_id=member,
                    action="purchase",
                    idempotency_key=f"p-{index}",
                    occurred_at=START + timedelta(minutes=minutes),
                    attributes={"amount": amount},
                ),
            )
        for member in ("m1", "m2"):
            credited = LedgerEntry.objects.filter(member__external_id=member, currency="points")
            days: dict = {}
            weeks: dict = {}
            for entry in credited.select_related("event"):
                day = period_start("day", entry.effective_at)
                week = period_start("week", entry.effective_at)
                days[day] = days.get(day, 0) + 1
                weeks[week] = weeks.get(week, 0) + entry.amount
            assert all(count <= 3 for count in days.values())
            assert all(total <= 700 for total in weeks.values())
            growth = LedgerEntry.objects.filter(member__external_id=member, currency="growth")
            assert (growth.aggregate(total=Sum("amount"))["total"] or 0) <= 25
        assert RuleCounter.objects.filter(rule=rule, period="day", occurrences__gt=3).count() == 0
        assert_balances_match_ledger()
        transaction.set_rollback(True)
