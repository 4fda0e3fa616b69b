"""The unit of work and the bulk writer: what the flow holds in memory is what lands in the
database, column for column, as the ORM would have written and read it, on every tracked model;
and the columns written come from the models, so a field added to one is written too."""

import datetime
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import models
from django.utils import timezone

from core import sql
from loyalty.demo import load_demo_program
from loyalty.engine import pipeline
from loyalty.engine.events import EventInput, record_events
from loyalty.models import (
    Action,
    ActionTally,
    Gift,
    KeyAction,
    MemberActivity,
    MemberStanding,
    MemberStreak,
    QuestProgress,
    RuleCounter,
)
from loyalty.persistence import bulk
from loyalty.program.compiled import program_changed
from tests.helpers import assert_balances_match_ledger

pytestmark = pytest.mark.django_db

# Rows the flow changes in memory and the flush upserts (or, for standings, updates).
CHANGED = [RuleCounter, ActionTally, MemberStreak, QuestProgress, MemberActivity, MemberStanding]


def values(row: models.Model) -> dict:
    return {field.attname: getattr(row, field.attname) for field in row._meta.concrete_fields}


@pytest.fixture
def program(db):
    load_demo_program()
    KeyAction.objects.create(
        action=Action.objects.get(code="check_in"),
        effective_from=timezone.now() - timedelta(days=400),
    )
    Gift.objects.create(kind=Gift.Kind.WELCOME, points=25, growth=5, is_active=True)
    program_changed()


@pytest.fixture
def flushed(program, monkeypatch):
    """Record a batch that touches every table the unit of work writes; the unit of work."""
    kept = []
    open_unit_of_work = pipeline.unit_of_work

    def keeping(*args, **kwargs):
        context = open_unit_of_work(*args, **kwargs)
        work = context.__enter__()
        kept.append(work)

        class Kept:
            def __enter__(self):
                return work

            def __exit__(self, *exc):
                return context.__exit__(*exc)

        return Kept()

    monkeypatch.setattr(pipeline, "unit_of_work", keeping)
    now = timezone.now()
    events = [
        EventInput(
            external_id=member,
            action=action,
            idempotency_key=f"{member}-{n}",
            occurred_at=now - timedelta(minutes=10 - n),
            attributes=attributes,
        )
        for member in ("ana", "ben")
        for n, (action, attributes) in enumerate(
            [
                ("check_in", {}),
                ("purchase", {"amount": "120.50"}),
                ("review", {}),
                ("purchase", {"amount": "80.00"}),
            ]
        )
    ]
    results = record_events(client=None, events=events)
    assert all(r.error is None for r in results), results
    (work,) = kept
    return work


def test_the_rows_a_flush_writes_are_the_rows_in_memory(flushed):
    work = flushed
    written = {
        "events": work.events,
        "entries": work.entries,
        "lots": work.lots,
        "awards": work.awards,
        "tier changes": work.tier_changes,
    }
    # The batch exercised every kind of new row and every kind of changed row.
    assert all(written.values()), {name: len(rows) for name, rows in written.items()}
    changed = {model for model in work._dirty} | {MemberStanding}
    assert changed == set(CHANGED)

    rows = [row for table in written.values() for row in table] + list(work.standings.values())
    for row in rows:
        loaded = type(row).objects.get(pk=row.pk)
        assert values(row) == values(loaded), type(row).__name__
        assert not row._state.adding
    # Upserted rows are found by their identity (one new in memory gets no id back).
    for model, table in work._dirty.items():
        identity = [model._meta.get_field(name).attname for name in bulk.identity_fields(model)]
        for row in table.values():
            loaded = model.objects.get(**{name: getattr(row, name) for name in identity})
            pk = model._meta.pk.attname
            assert {**values(row), pk: loaded.pk} == values(loaded), model.__name__
    assert_balances_match_ledger()


def test_reading_and_making_rows_past_the_orm_gives_what_the_orm_gives(flushed):
    """``sql.select`` (``Model.from_db`` without its per-field loop) and ``sql.new_row`` (the
    keyword constructor without ``__init__``) on every tracked model."""
    work = flushed
    tables = [work.events, work.entries, work.lots, work.awards, work.tier_changes]
    tables += [list(model.objects.filter(member__external_id="ana")) for model in CHANGED]
    for rows in tables:
        model = type(rows[0])
        for row in rows:
            pk = model._meta.pk
            (read,) = sql.select(model, f"t.{pk.column} = %s", [row.pk])
            loaded = model.objects.get(pk=row.pk)
            assert values(read) == values(loaded), model.__name__
            assert read._state.db == loaded._state.db and not read._state.adding
            fields = {k: v for k, v in values(loaded).items() if k != pk.attname}
            assert values(sql.new_row(model, **fields)) == values(model(**fields)), model.__name__


def _another(field: models.Field, value):
    """A value of the field's type that differs from ``value``."""
    if field.choices:
        return next(choice for choice, _ in field.flatchoices if choice != value)
    if isinstance(field, models.BooleanField):
        return not value
    if isinstance(field, models.DateTimeField):
        return (value or timezone.now()) + timedelta(hours=1, microseconds=7)
    if isinstance(field, models.DateField):
        return (value or datetime.date(2026, 1, 1)) + timedelta(days=1)
    if isinstance(field, models.DecimalField):
        return (value or Decimal(0)) + Decimal("0.5")
    if isinstance(field, models.IntegerField):
        return (value or 0) + 3
    if isinstance(field, models.JSONField):
        return {"changed": [1, 2]}
    if isinstance(field, models.CharField):
        return (value or "") + "x"
    raise AssertionError(f"no other value for {field!r}")


@pytest.mark.parametrize("model", CHANGED, ids=lambda model: model.__name__)
def test_every_field_of_a_changed_row_is_written(flushed, model):
    """Change every field the flush may write (all but identity, primary key and creation
    stamp) and flush it: each lands. A field added to the model is in the list by itself."""
    row = model.objects.filter(member__external_id="ana").first()
    identity = set(bulk.identity_fields(model))
    changed = {}
    for field in model._meta.concrete_fields:
        if field.primary_key or field.name in identity or field.is_relation:
            continue
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            continue
        changed[field.attname] = _another(field, getattr(row, field.attname))
        setattr(row, field.attname, changed[field.attname])
    assert changed, model.__name__

    if model is MemberStanding:
        bulk.send(bulk.changed_writes([], [(model, [row])]))
    else:
        bulk.send(bulk.changed_writes([(model, [row])], []))

    stored = model.objects.get(pk=row.pk)
    assert {name: getattr(stored, name) for name in changed} == changed
    # Relations the flow may change are written too (a standing's tiers).
    relations = {f.name for f in model._meta.concrete_fields if f.is_relation} - identity
    assert relations <= set(bulk.changed_fields(model)) | {model._meta.pk.name}
