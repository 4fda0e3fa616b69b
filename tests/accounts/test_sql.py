"""The hot path's SQL kept as text makes the same rows the ORM makes."""

import datetime

import pytest
from django.db.models.signals import post_init
from django.utils import timezone

from accounts.models import ApiClient, Member
from accounts.services import api_client_create
from core import sql
from loyalty.models import LedgerEntry, MemberStanding, PointLot, QuestProgress
from loyalty.persistence import bulk
from tests.factories import MemberFactory, make_quest

pytestmark = pytest.mark.django_db


def values(row):
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


def test_select_makes_the_instances_the_orm_makes():
    member = MemberFactory(
        attributes={"city": "Lyon", "tags": ["a", "b"]},
        birthday=datetime.date(1990, 5, 17),
    )
    MemberStanding.objects.create(member=member, growth=12, points=7)
    api_client_create(name="shop", scopes=["events:write", "members:read"])
    quest = make_quest("weekly", "week", [("purchase", 2)])
    QuestProgress.objects.create(
        member=member, quest=quest, period_start=datetime.date(2026, 11, 30), step_counts={"4": 1}
    )

    for model, where, params in (
        (Member, "t.external_id = %s", [member.external_id]),
        (MemberStanding, "t.member_id = %s", [member.pk]),
        (ApiClient, "t.name = %s", ["shop"]),
        (QuestProgress, "t.member_id = %s", [member.pk]),
    ):
        (made,) = sql.select(model, where, params)
        (loaded,) = model.objects.filter(pk=made.pk)
        assert values(made) == values(loaded), model.__name__
        assert not made._state.adding
    # JSON comes back decoded, dates as dates, as the ORM gives them.
    (made,) = sql.select(Member, "t.id = %s", [member.pk])
    assert made.attributes == {"city": "Lyon", "tags": ["a", "b"]}
    assert made.birthday == datetime.date(1990, 5, 17)


def test_select_makes_rows_that_save_and_relate_as_loaded_ones_do():
    member = MemberFactory()
    MemberStanding.objects.create(member=member, growth=12, points=7)
    (made,) = sql.select(MemberStanding, "t.member_id = %s", [member.pk])
    assert made._state.db == "default"
    assert made.member == member  # the relation loads from the id
    made.points = 9
    made.save(update_fields=["points"])  # an update of a loaded row, not an insert
    assert MemberStanding.objects.get(pk=member.pk).points == 9
    assert MemberStanding.objects.count() == 1


def test_select_runs_init_when_the_model_is_listened_to():
    member = MemberFactory()
    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.external_id)

    post_init.connect(listener, sender=Member)
    try:
        (made,) = sql.select(Member, "t.id = %s", [member.pk])
    finally:
        post_init.disconnect(listener, sender=Member)
    assert seen == [member.external_id]
    assert made.pk == member.pk and not made._state.adding


def test_new_row_makes_what_the_keyword_constructor_makes():
    member = MemberFactory()
    given = {
        "member_id": member.pk,
        "currency": "points",
        "kind": "earn",
        "amount": 5,
        "effective_at": timezone.now(),
    }
    made, built = sql.new_row(LedgerEntry, **given), LedgerEntry(**given)
    assert values(made) == values(built)
    assert made._state.adding and made._state.db is None and made.pk is None
    assert made.event_id is None and made.reason == ""  # defaults filled in
    # A relation given as the object sets its id and caches it, as the descriptor does.
    lot = sql.new_row(PointLot, member=member, amount=5, remaining=5)
    assert lot.member_id == member.pk and lot.member is member
    # Each instance gets its own default of a mutable field.
    first, second = sql.new_row(Member, external_id="a"), sql.new_row(Member, external_id="b")
    assert first.attributes == {} and first.attributes is not second.attributes
    made.save()
    assert LedgerEntry.objects.get(pk=made.pk).amount == 5
    with pytest.raises(TypeError):
        sql.new_row(LedgerEntry, amount=1, colour="red")


def test_new_row_runs_init_when_the_model_is_listened_to():
    seen = []

    def listener(sender, instance, **kwargs):
        seen.append(instance.external_id)

    post_init.connect(listener, sender=Member)
    try:
        sql.new_row(Member, external_id="watched")
    finally:
        post_init.disconnect(listener, sender=Member)
    assert seen == ["watched"]


def test_any_of_matches_a_list_of_values():
    members = MemberFactory.create_batch(3)
    where, params = sql.any_of("t.external_id", [members[0].external_id, members[2].external_id])
    found = sql.select(Member, where, params)
    assert {m.pk for m in found} == {members[0].pk, members[2].pk}
    where, params = sql.any_of("t.id", [])
    assert sql.select(Member, where, params) == []


def test_any_of_matches_a_single_value():
    members = MemberFactory.create_batch(2)
    where, params = sql.any_of("t.external_id", [members[1].external_id])
    assert [m.pk for m in sql.select(Member, where, params)] == [members[1].pk]
    where, params = sql.any_of("t.id", [members[0].pk])
    assert [m.pk for m in sql.select(Member, where, params)] == [members[0].pk]


def test_execute_counts_the_rows_it_touched():
    MemberFactory.create_batch(2, display_name="old")
    touched = sql.execute(
        f"UPDATE {Member._meta.db_table} SET display_name = %s WHERE display_name = %s",
        ["new", "old"],
    )
    assert touched == 2
    assert Member.objects.filter(display_name="new").count() == 2


def test_a_longer_value_does_not_match_its_first_characters():
    member = MemberFactory(external_id="x" * 128)  # the column's length
    assert not Member.objects.filter(sql.AnyOf("external_id", ["x" * 129])).exists()
    assert Member.objects.filter(sql.AnyOf("external_id", ["x" * 128])).get() == member


@pytest.mark.postgres  # SQLite does not enforce lengths
def test_a_value_too_long_for_its_column_is_refused_not_cut_short():
    from django.db import DataError, transaction
    from django.utils import timezone

    from loyalty.models import LedgerEntry

    member = MemberFactory()
    entry = LedgerEntry(
        member_id=member.pk,
        currency="points",
        kind="adjust",
        amount=1,
        source_type="adjustment",
        reason="r" * 201,
        effective_at=timezone.now(),
    )
    with pytest.raises(DataError), transaction.atomic():
        bulk.insert(LedgerEntry, [entry])


@pytest.mark.parametrize("count", [1, 7, 60])  # one INSERT below 50 rows, COPY from 50
def test_rows_written_in_bulk_read_back_exactly(count):
    """Rows reach the database as one JSON array (or COPY): times keep their microseconds,
    decimals their digits, JSON its shape, and None stays SQL NULL."""
    from datetime import UTC, datetime, timedelta
    from decimal import Decimal

    from loyalty.models import Event, EventReversal

    member = MemberFactory()
    at = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
    events = [
        Event(
            idempotency_key=f'k-{n} "quoted" \\ ü',
            request_hash="h",
            member=member,
            action_code="purchase",
            occurred_at=at + timedelta(microseconds=n),
            status="credited",
            attributes={"amount": "42.00", "tags": ["a", None, 1.5], "nested": {"ü": None}},
            outcome={},
        )
        for n in range(count)
    ]
    bulk.insert(Event, events)
    reversals = [
        EventReversal(
            event=event,
            idempotency_key=f"r-{event.idempotency_key}",
            request_hash="h",
            amount=None if n % 2 else Decimal("1234567890.12"),
            fraction=Decimal("0.12345678"),
            targets={"7": {"growth": -3, "points": -12}},
        )
        for n, event in enumerate(events)
    ]
    bulk.insert(EventReversal, reversals)

    stored = {e.pk: e for e in Event.objects.filter(member=member)}
    assert len(stored) == count
    for event in events:
        again = stored[event.pk]  # ids came back in the rows' order
        assert again.idempotency_key == event.idempotency_key
        assert again.occurred_at == event.occurred_at
        assert again.attributes == event.attributes
    for n, reversal in enumerate(EventReversal.objects.filter(event__member=member).order_by("id")):
        assert reversal.event_id == events[n].pk
        assert reversal.amount == (None if n % 2 else Decimal("1234567890.12"))
        assert reversal.fraction == Decimal("0.12345678")
        assert reversal.targets == {"7": {"growth": -3, "points": -12}}
