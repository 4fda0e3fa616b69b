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
    from loyalty.models import EntryKind, MemberStanding, SourceType
    from loyalty.persistence.locks import lock_standing

    make_rule("purchase", growth_per_occurrence=5, points_per_occurrence=100)
    earn()
    with transaction.atomic():
        standing = lock_standing(MemberStanding.objects.get().pk)
        ledger_post(
            standing=standing,
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


def test_posting_with_a_source_not_yet_written_is_refused_even_under_python_O(earn):
    """An invariant of the ledger is an explicit check, not an ``assert`` that ``-O`` strips."""
    from django.db import transaction

    from core.errors import InvariantBroken
    from loyalty.ledger.entries import Movement, ledger_post
    from loyalty.models import Adjustment, MemberStanding
    from loyalty.persistence.locks import lock_standing

    make_rule("purchase", points_per_occurrence=10)
    earn()
    with pytest.raises(InvariantBroken), transaction.atomic():
        ledger_post(
            standing=lock_standing(MemberStanding.objects.get().pk),
            movements=[
                Movement(
                    currency="points",
                    kind="adjust",
                    amount=5,
                    source_type="adjustment",
                    source=Adjustment(),  # never saved
                )
            ],
        )
    assert LedgerEntry.objects.count() == 1
