"""Property: any sequence of earn, spend, reverse, adjust, activate and expire keeps the
cached balances equal to the ledger sums and the lots consistent (none below zero)."""

import contextlib
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import Member
from core.errors import DomainError
from loyalty.engine.adjustments import adjust
from loyalty.engine.events import EventInput, record_event
from loyalty.engine.reversals import event_reverse
from loyalty.ledger.points import activate_pending_points, expire_points, points_debit_locked
from loyalty.ledger.reconciliation import verify_ledger
from loyalty.ledger.session import member_session
from loyalty.models import EntryKind, Event, MemberStanding, PointLot, Program, SourceType
from loyalty.program.compiled import program_changed
from tests.factories import make_rule
from tests.helpers import assert_balances_match_ledger

pytestmark = pytest.mark.django_db

operations = st.lists(
    st.one_of(
        st.tuples(st.just("earn"), st.integers(1, 300), st.integers(0, 60), st.booleans()),
        st.tuples(st.just("spend"), st.integers(1, 400)),
        st.tuples(
            st.just("reverse"), st.integers(0, 20), st.one_of(st.none(), st.integers(1, 150))
        ),
        st.tuples(st.just("adjust"), st.integers(-200, 200).filter(bool)),
        st.tuples(st.just("activate"), st.integers(0, 60)),
        st.tuples(st.just("expire"), st.integers(0, 90)),
    ),
    max_size=25,
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=operations, negative=st.booleans())
def test_any_sequence_keeps_the_books_straight(db, ops, negative):
    with transaction.atomic():
        Program.objects.update_or_create(
            pk=1, defaults={"reversal_shortfall": "negative" if negative else "record"}
        )
        program_changed()
        make_rule(
            "purchase",
            unit_attribute="amount",
            points_per_unit=1,
            growth_per_occurrence=3,
            points_expiry="days",
            points_expiry_n=30,
        )
        make_rule("review", points_per_occurrence=25, hold_days=10)
        now = timezone.now()
        member = Member.objects.create(external_id="p")
        for index, op in enumerate(ops):
            # Refusals (insufficient points, already reversed…) must change nothing.
            with contextlib.suppress(DomainError):
                run(op, index, member, now)
        assert_balances_match_ledger()
        report = verify_ledger()
        assert report.ok, report.mismatches
        assert not PointLot.objects.filter(remaining__lt=0).exists()
        transaction.set_rollback(True)


def run(op, index, member, now):
    kind = op[0]
    if kind == "earn":
        _, amount, days_ago, held = op
        record_event(
            client=None,
            event=EventInput(
                external_id="p",
                action="review" if held else "purchase",
                idempotency_key=f"e{index}",
                occurred_at=now - timedelta(days=days_ago),
                attributes={"amount": amount},
            ),
        )
    elif kind == "spend":
        with member_session(member.pk) as session:
            points_debit_locked(
                work=session.work,
                standing=session.standing,
                amount=op[1],
                kind=EntryKind.SPEND,
                source_type=SourceType.REDEMPTION,
            )
    elif kind == "reverse":
        events = list(Event.objects.order_by("id").values_list("pk", flat=True))
        if events:
            event_id = events[op[1] % len(events)]
            amount = Decimal(op[2]) if op[2] else None
            event_reverse(
                client=None, event_id=event_id, idempotency_key=f"r{index}", amount=amount
            )
    elif kind == "adjust":
        adjust(
            member=member,
            currency="points",
            amount=op[1],
            reason="prop",
            idempotency_key=f"a{index}",
        )
    elif kind == "activate":
        activate_pending_points(at=now - timedelta(days=op[1]))
    elif kind == "expire":
        expire_points(at=now + timedelta(days=op[1]))
    assert MemberStanding.objects.filter(pk=member.pk, points_pending__lt=0).count() == 0
