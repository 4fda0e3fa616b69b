"""The ledger is append-only, in the database itself."""

import pytest
from django.db import DatabaseError, transaction

from loyalty.models import LedgerEntry
from tests.factories import make_rule

pytestmark = pytest.mark.django_db


@pytest.mark.postgres
def test_the_database_refuses_to_update_a_ledger_entry(earn):
    make_rule("purchase", points_per_occurrence=10)
    earn()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.update(amount=1_000_000)
    assert LedgerEntry.objects.get().amount == 10


@pytest.mark.postgres
def test_the_database_refuses_to_delete_a_ledger_entry(earn):
    make_rule("purchase", points_per_occurrence=10)
    earn()
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        LedgerEntry.objects.all()._raw_delete(LedgerEntry.objects.db)
    assert LedgerEntry.objects.count() == 1


def test_spending_points_never_lowers_growth(earn):
    from loyalty.ledger.entries import Movement, ledger_post
    from loyalty.ledger.session import member_session
    from loyalty.models import EntryKind, MemberStanding, SourceType

    make_rule("purchase", growth_per_occurrence=5, points_per_occurrence=100)
    earn()
    with member_session(MemberStanding.objects.get().pk) as session:
        ledger_post(
            work=session.work,
            standing=session.standing,
            movements=[
                Movement(
                    currency="points",
                    kind=EntryKind.SPEND,
                    amount=-60,
                    source_type=SourceType.REDEMPTION,
                )
            ],
        )
    standing = MemberStanding.objects.get()
    assert (standing.growth, standing.points, standing.points_spent) == (5, 40, 60)


def test_posting_to_a_standing_the_unit_of_work_does_not_hold_is_refused(earn):
    """An invariant of the ledger is an explicit check, not an ``assert`` that ``python -O``
    strips: the flush writes the unit of work's own standing objects, so a posting to another
    copy of the row would be lost."""
    from core.errors import InvariantBroken
    from loyalty.ledger.entries import Movement, ledger_post
    from loyalty.ledger.session import member_session
    from loyalty.models import MemberStanding

    make_rule("purchase", points_per_occurrence=10)
    earn()
    member_id = MemberStanding.objects.get().pk
    with pytest.raises(InvariantBroken), transaction.atomic(), member_session(member_id) as session:
        ledger_post(
            work=session.work,
            standing=MemberStanding.objects.get(),  # a copy, not the locked standing
            movements=[
                Movement(currency="points", kind="adjust", amount=5, source_type="adjustment")
            ],
        )
    assert LedgerEntry.objects.count() == 1
    assert MemberStanding.objects.get().points == 10
