"""The bulk writer: rows turned into as few SQL statements as the tables allow.

The only place that writes the event flow's SQL text. On PostgreSQL a table's rows go as one
JSON parameter taken apart by the server (``row_source``), new rows by ``INSERT … RETURNING`` or
``COPY`` with ids drawn first, changed rows by ``INSERT … ON CONFLICT`` or ``UPDATE … FROM``, and
writes that answer nothing ride along another statement as ``WITH`` queries (``joined``).
Elsewhere (SQLite) Django's ``bulk_create`` and ``bulk_update`` write them at once. The columns
written are always the models' own concrete fields (``changed_fields``), never hand-kept lists.
"""

import functools
import json
from collections.abc import Callable
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection
from django.db.models import (
    DateField,
    DateTimeField,
    DecimalField,
    Field,
    JSONField,
    Model,
    TimeField,
    UniqueConstraint,
    UUIDField,
)
from django.utils import timezone

from core import sql

# A write that answers nothing: its SQL and parameters.
Write = tuple[str, list[Any]]


@functools.cache
def identity_fields(model: type[Model]) -> tuple[str, ...]:
    """The fields naming a row of ``model`` for an upsert: those of its unique constraint, or
    its primary key."""
    for constraint in model._meta.constraints:
        if isinstance(constraint, UniqueConstraint) and constraint.fields:
            return tuple(constraint.fields)
    return (model._meta.pk.name,)


@functools.cache
def changed_fields(model: type[Model]) -> tuple[str, ...]:
    """The fields an upsert or update writes: every concrete field but the primary key, the
    row's identity and its creation stamp. Derived from the model, so a new field is written."""
    identity = identity_fields(model)
    return tuple(
        field.name
        for field in model._meta.concrete_fields
        if not field.primary_key
        and field.name not in identity
        and not getattr(field, "auto_now_add", False)
        and not getattr(field, "generated", False)
    )


def write_all(
    *,
    new: list[tuple[type[Model], list[Model]]],
    upserted: list[tuple[type[Model], list[Model]]],
    updated: list[tuple[type[Model], list[Model]]],
    link: Callable[[], None],
    link_before: type[Model],
    finish: Callable[[list[Write]], None],
    along: list[Write] = (),
) -> None:
    """Write new rows (tables listed in the order they point at each other), upsert changed
    rows by their identity, update others by primary key; then ``finish(writes)`` sends what is
    left with its own statement. ``link()`` sets ids that point at new rows, once they have
    theirs (before ``link_before``'s rows are written). ``along``: writes answering nothing,
    to other tables, sent with the rest.

    On PostgreSQL the new rows' ids are drawn first, all tables in one statement, so that the
    rows and the changes then go in one more: two round trips for a single event, where
    writing table by table took four."""
    if connection.vendor != "postgresql":
        send(list(along))
        changed_writes(upserted, updated)  # written at once off PostgreSQL
        for model, rows in new:
            if model is link_before:
                link()
            insert(model, rows)
        finish([])
        return
    _draw_ids(new)
    link()
    writes = [*along, *changed_writes(upserted, updated)]
    # A table copied on its own goes after the writes of those before it.
    for model, rows in new:
        _link_and_stamp(model, rows)
        if len(rows) < COPY_FROM_ROWS:
            writes.append(_insert_write(model, rows))
        else:
            send(writes)
            writes = []
            _copy(model, rows)
        _written(rows)
    finish(writes)


def changed_writes(
    upserted: list[tuple[type[Model], list[Model]]],
    updated: list[tuple[type[Model], list[Model]]],
) -> list[Write]:
    """The upserts and updates of changed rows, as statements to send (PostgreSQL); elsewhere
    they are written at once and nothing is left to send. An upserted row that was new gets no
    id back (on PostgreSQL): nothing reads it after the flush."""
    return [write for model, rows in upserted for write in upsert_write(model, rows)] + [
        write
        for model, rows in updated
        for write in columns_write(model, rows, list(changed_fields(model)))
    ]


def _unnest(fields: list[Field], rows: list[Model]) -> tuple[str, list[Any]]:
    """The rows' values of ``fields`` as a ``row_source``."""
    return row_source(fields, [_column(rows, field.attname) for field in fields])


def _column(rows: list[Model], attname: str) -> list[Any]:
    """The rows' values of one field, read from the instances' dicts: a foreign key's id
    attribute is a data descriptor, whose Python ``__get__`` every read would run (70 reads an
    event in a batch's flush). A deferred field is not in the dict: read through it then."""
    try:
        return [row.__dict__[attname] for row in rows]
    except KeyError:
        return [getattr(row, attname) for row in rows]


def row_source(fields: list[Field], columns: list[list[Any]]) -> tuple[str, list[Any]]:
    """Rows given as one list of values per field, as a row source for ``FROM … AS v(columns)``
    on PostgreSQL, and its parameters: one JSON array of the rows, taken apart by the server.

    The statement's text depends on the fields alone, never on the number of rows, and the rows
    are one parameter. So psycopg keeps the statement parsed and the server keeps its plan: a
    flush's one statement of a dozen tables' rows stays under psycopg's limits for keeping a
    parsed statement (4,096 characters, 50 parameters), where one array per column went over
    them and was parsed again on every event. Encoding JSON is C; so is the server's reading
    it. After the columns comes ``n``, the rows' order from 1."""
    source, converters = _json_shape(fields)
    ready = [
        values if convert is None else [None if v is None else convert(v) for v in values]
        for convert, values in zip(converters, columns, strict=True)
    ]
    return source, [json.dumps(list(zip(*ready, strict=True)), cls=DjangoJSONEncoder)]


# The JSON row sources made so far, by their fields' identities (fields live as long as the
# process; hashing a field itself costs a Python call, and a flush asks for a hundred).
_json_shapes: dict[tuple[int, ...], tuple[str, list[Callable[[Any], Any] | None]]] = {}


def _json_shape(fields: list[Field]) -> tuple[str, list[Callable[[Any], Any] | None]]:
    """The row source's SQL for these fields, and how each column's values go into JSON
    exactly: times in full (the JSON encoder would cut microseconds), decimals and UUIDs as
    text."""
    key = tuple(map(id, fields))
    if (shape := _json_shapes.get(key)) is None:
        # A JSON field's null is SQL NULL, as Django stores None.
        values = [
            f"NULLIF(r.j -> {i}, 'null')"
            if isinstance(field, JSONField)
            else f"(r.j ->> {i})::{sql.cast_type(field)}"
            for i, field in enumerate(fields)
        ]
        source = (
            f"(SELECT {', '.join(values)}, r.n "
            "FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS r(j, n))"
        )
        shape = _json_shapes[key] = (source, [_json_converter(field) for field in fields])
    return shape


def _json_converter(field: Field) -> Callable[[Any], Any] | None:
    if isinstance(field, (DateTimeField, DateField, TimeField)):
        return lambda value: value.isoformat()
    if isinstance(field, (DecimalField, UUIDField)):
        return str
    return None


def upsert_write(model: type[Model], rows: list[Model]) -> list[Write]:
    """Insert the rows, or update their ``changed_fields`` where a row with the same identity
    is there. On PostgreSQL the statement to send (one ``INSERT … SELECT … ON CONFLICT``);
    elsewhere it is written at once (``bulk_create``) and nothing is left to send."""
    if not rows:
        return []
    unique, changed = identity_fields(model), changed_fields(model)
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            rows, update_conflicts=True, unique_fields=unique, update_fields=changed
        )
        return []
    meta = model._meta
    fields = [
        f
        for f in meta.concrete_fields
        if not (f.primary_key and f.get_internal_type().endswith("AutoField"))
    ]
    now = timezone.now()
    for field in fields:
        if getattr(field, "auto_now", False):
            for row in rows:
                setattr(row, field.attname, now)
    source, params = _unnest(fields, rows)
    columns = [f.column for f in fields]
    target = ", ".join(meta.get_field(name).column for name in unique)
    updates = ", ".join(
        f"{meta.get_field(n).column} = EXCLUDED.{meta.get_field(n).column}" for n in changed
    )
    return [
        (
            f"INSERT INTO {meta.db_table} ({', '.join(columns)}) "
            f"SELECT {', '.join(columns)} FROM {source} AS v({', '.join(columns)}) "
            f"ON CONFLICT ({target}) DO UPDATE SET {updates}",
            params,
        )
    ]


def columns_write(model: type[Model], rows: list[Model], fields: list[str]) -> list[Write]:
    """Writing these fields of the rows (found by primary key) as they are in memory, to send
    ``along`` another write: on PostgreSQL one ``UPDATE … FROM`` the rows' values; elsewhere
    Django's ``bulk_update`` writes them at once and nothing is left to send."""
    if not rows:
        return []
    if connection.vendor != "postgresql":
        model.objects.bulk_update(rows, fields)
        return []
    meta = model._meta
    columns = [meta.pk, *(meta.get_field(name) for name in fields)]
    source, params = _unnest(columns, rows)
    names = [f.column for f in columns]
    return [
        (
            f"UPDATE {meta.db_table} AS s SET "
            + ", ".join(f"{name} = v.{name}" for name in names[1:])
            + f" FROM {source} AS v({', '.join(names)}) WHERE s.{names[0]} = v.{names[0]}",
            params,
        )
    ]


def execute(text: str, params: list[Any], *, along: list[Write]) -> int:
    """Run a write, with ``along`` (writes answering nothing, to other tables: ``joined``) in
    its statement; the number of rows the write itself touched."""
    return sql.execute(*joined(along, text, params))


def send(writes: list[Write]) -> None:
    """Writes that answer nothing, sent as one statement on PostgreSQL (``joined``)."""
    if not writes:
        return
    if connection.vendor != "postgresql":
        for text, params in writes:
            sql.execute(text, params)
        return
    *first, (last, params) = writes
    execute(last, params, along=first)


def joined(writes: list[Write], text: str, params: list[Any]) -> Write:
    """One statement doing ``writes`` and then ``text``: the writes as data-modifying ``WITH``
    queries (PostgreSQL). One round trip instead of one per write. They all see the snapshot
    the statement starts with, which is all they need: each touches rows of its own table that
    no other of them touches (what each writes, none of the others reads). Foreign keys are
    checked when the whole statement ends, so a new row may point at one that another of them
    inserts (an entry at its event)."""
    if not writes:
        return text, list(params)
    head = "WITH " + ", ".join(f"w{n} AS ({q})" for n, (q, _) in enumerate(writes))
    return f"{head} {text}", [value for _, values in writes for value in values] + list(params)


# Below this many rows one INSERT … RETURNING costs fewer round trips than drawing ids + COPY.
COPY_FROM_ROWS = 50


def _insert_returning(model: type[Model], rows: list[Model]) -> None:
    """A few new rows in one ``INSERT … SELECT … RETURNING id``: what ``bulk_create`` sends,
    without building the statement again for every call."""
    fields = _insertable(model)
    _link_and_stamp(model, rows)
    source, params = _unnest(fields, rows)
    with connection.cursor() as cursor:
        cursor.execute(_insert_sql(model, source, returning=True), params)
        for row, (pk,) in zip(rows, cursor.fetchall(), strict=True):
            row.pk = pk
    _written(rows)


@functools.cache
def _insertable(model: type[Model]) -> list[Field]:
    return [f for f in model._meta.concrete_fields if not f.primary_key]


@functools.cache
def _insert_sql(model: type[Model], source: str, *, returning: bool) -> str:
    """``INSERT … SELECT`` of the rows in ``source``. With ``returning`` the table gives their
    ids, back in the rows' order (kept by ``ORDER BY``); without, the rows carry ids drawn
    before (``_draw_ids``)."""
    fields = _insertable(model) if returning else model._meta.concrete_fields
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    names = ", ".join(f.column for f in fields)
    text = (
        f"INSERT INTO {model._meta.db_table} ({columns}) SELECT {names} FROM {source} AS v({names})"
    )
    return f"{text} ORDER BY v.n RETURNING {model._meta.pk.column}" if returning else text


def _link_and_stamp(model: type[Model], rows: list[Model]) -> None:
    """Set foreign keys given as objects written just before (the entry of a lot, …) and the
    creation and change stamps, as ``save`` would."""
    relations, stamped = _links_and_stamps(model)
    for row in rows:
        cached, held = row._state.fields_cache, row.__dict__
        for field in relations:
            target = cached.get(field.cache_name)
            if target is not None and held.get(field.attname) is None:
                setattr(row, field.attname, target.pk)
    now = timezone.now()
    for row in rows:
        for attname in stamped:
            setattr(row, attname, now)


@functools.cache
def _links_and_stamps(model: type[Model]) -> tuple[list[Field], list[str]]:
    fields = model._meta.concrete_fields
    return [field for field in fields if field.is_relation], [
        field.attname
        for field in fields
        if getattr(field, "auto_now_add", False) or getattr(field, "auto_now", False)
    ]


def insert(model: type[Model], rows: list[Model]) -> None:
    """Insert new rows (ids are set on them). On PostgreSQL: by ``COPY`` when there are many,
    ids drawn from the table's sequence first so rows written later can point at them; else by
    one ``INSERT … RETURNING``. ``bulk_create`` elsewhere."""
    if not rows:
        return
    if connection.vendor == "postgresql" and len(rows) < COPY_FROM_ROWS:
        _insert_returning(model, rows)
        return
    if connection.vendor != "postgresql":
        model.objects.bulk_create(rows)
        return
    _draw_ids([(model, rows)])
    _link_and_stamp(model, rows)
    _copy(model, rows)
    _written(rows)


def _written(rows: list[Model]) -> None:
    """Mark rows written here as saved, as ``save`` would."""
    for row in rows:
        row._state.adding, row._state.db = False, connection.alias


def _draw_ids(tables: list[tuple[type[Model], list[Model]]]) -> None:
    """Give the new rows ids from their tables' sequences: one statement for every table."""
    if not tables:
        return
    drawn = sql.fetch(
        "SELECT "
        + ", ".join(
            "ARRAY(SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s))"
            for _ in tables
        ),
        [value for model, rows in tables for value in (model._meta.db_table, len(rows))],
    )[0]
    for (_, rows), ids in zip(tables, drawn, strict=True):
        for row, pk in zip(rows, ids, strict=True):
            row.pk = pk


def _insert_write(model: type[Model], rows: list[Model]) -> Write:
    """Inserting rows whose ids are drawn, as a write to send ``along`` another."""
    source, params = _unnest(model._meta.concrete_fields, rows)
    return _insert_sql(model, source, returning=False), params


def _copy(model: type[Model], rows: list[Model]) -> None:
    """Write rows whose ids are drawn with ``COPY``."""
    fields = model._meta.concrete_fields
    # Plain values suit COPY as they are, but JSON goes as text.
    json_fields = [
        (position, field.encoder)
        for position, field in enumerate(fields)
        if isinstance(field, JSONField)
    ]
    attnames = [field.attname for field in fields]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {model._meta.db_table} ({columns}) FROM STDIN") as copy,
    ):
        for row in rows:
            held = row.__dict__
            values = [held[name] if name in held else getattr(row, name) for name in attnames]
            for position, encoder in json_fields:
                values[position] = json.dumps(values[position], cls=encoder)
            copy.write_row(values)
