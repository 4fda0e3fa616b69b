"""The event flow's unit of work: the rows a batch (a chunk of one: ``pipeline.CHUNK_EVENTS``)
touches are read once and written in bulk.

Recording an event reads and changes a handful of small rows per member (standing, rule
counters, tallies, streaks, quest progress, activity, leaderboard scores) and appends others
(the event, badge awards, ledger entries, point lots). Inside ``unit_of_work(...)`` the services
take those rows from here: each table is read once, for every member of the batch, on first use;
changes stay in memory; ``flush`` writes each table in one bulk statement and appends the new
rows in dependency order (events, badge awards, entries, lots, lot movements).

Values computed in memory are exact because the caller holds every member's standing lock for
the whole transaction, and every write to these rows in the flow goes through here. Rare
outcomes (a gift, a completed quest, an activity transition, webhooks) are written at once, to
other rows; their ledger entries go through here too. A tier change is kept here too: the flush
writes the standing's tier columns with its balances and appends the change.
"""

import functools
import json
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date, datetime
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
    QuerySet,
    TimeField,
    UUIDField,
)
from django.utils import timezone

from accounts import services as accounts_services
from core import sql
from loyalty.models import (
    ActionTally,
    BadgeAward,
    Currency,
    Event,
    LedgerEntry,
    LotMovement,
    MemberActivity,
    MemberStanding,
    MemberStreak,
    PointLot,
    QuestProgress,
    RuleCounter,
    TierChange,
)
from loyalty.models.standing import BUCKETS
from loyalty.periods import period_start

# Per table kept here: the fields identifying a row (its unique constraint) and those changed.
UPSERTS: dict[type[Model], tuple[list[str], list[str]]] = {
    RuleCounter: (
        ["member", "rule", "period", "period_start"],
        ["occurrences", "points", "growth", "last_credited_at"],
    ),
    ActionTally: (["member", "action"], ["count"]),
    MemberStreak: (
        ["member", "streak"],
        ["current", "longest", "last_day", "freezes_month", "freezes_used"],
    ),
    QuestProgress: (["member", "quest", "period_start"], ["step_counts", "completed_at"]),
    MemberActivity: (
        ["member"],
        ["state", "since", "last_key_day", "returned_on", "key_day", "key_count"],
    ),
}

# A write that answers nothing: its SQL and parameters.
Write = tuple[str, list[Any]]
# Writes leaderboard score deltas, keyed (board id, period start, member id), with writes along.
AddScores = Callable[[dict[tuple[int, Any, int], int], list[Write]], None]

_current: ContextVar["UnitOfWork | None"] = ContextVar("loyalty_unit_of_work", default=None)


def current() -> "UnitOfWork | None":
    """The unit of work of the flow running in this context, if any."""
    return _current.get()


def save(row: Model, *, now: bool = False) -> None:
    """Write a changed row of the flow: with the running unit of work's flush, or at once if
    none runs or ``now`` is asked (when its id is needed, or others count it)."""
    work = current()
    if work is not None and not now:
        work.changed(row)
        return
    row.save()
    if work is not None:
        work.saved(row)


def member_external_id(member_id: int) -> str | None:
    """The host app's id of a member (known to the unit of work for its members)."""
    work = current()
    if work is not None and member_id in work.external_ids:
        return work.external_ids[member_id]
    return accounts_services.member_external_id(member_id)


class UnitOfWork:
    def __init__(
        self,
        standings: dict[int, MemberStanding],
        external_ids: dict[int, str],
        since: datetime,
        add_scores: "AddScores",
    ):
        self.standings = standings
        self._add_scores_to_store = add_scores
        self.external_ids = external_ids
        self.since = since  # the batch's earliest event time: older period rows are not read
        self.events: list[Event] = []
        self.entries: list[LedgerEntry] = []
        self._growth_posted: dict[int, list[LedgerEntry]] = {}
        self.lots: list[PointLot] = []
        self.lot_movements: list[LotMovement] = []
        self.awards: list[BadgeAward] = []
        self.tier_changes: list[TierChange] = []
        self._sourced: list[tuple[LedgerEntry, Model]] = []  # entries whose source is unwritten
        self.touched: set[int] = set()
        self.scores: dict[tuple[int, Any, int], int] = {}  # leaderboard score deltas
        # Bonuses given in the flow (badges, quests, gifts), for the events' answers.
        self.bonuses: list[dict[str, Any]] = []
        self._rows: dict[type[Model], dict[Hashable, Model]] = {}
        self._dirty: dict[type[Model], dict[int, Model]] = {}  # changed rows by identity
        self._memo: dict[Hashable, Any] = {}

    # --- Reading ------------------------------------------------------------------------------

    @property
    def member_ids(self) -> list[int]:
        return list(self.standings)

    @property
    def period_floor(self) -> date:
        """The first day of every day, week or month period holding one of the batch's events:
        period rows (counters, quest progress) starting earlier are never read."""
        return min(period_start("week", self.since), period_start("month", self.since))

    def row(
        self,
        model: type[Model],
        key: Hashable,
        *,
        index: Callable[[Model], Hashable],
        query: Callable[[list[int]], QuerySet],
        new: Callable[[], Model],
    ) -> Model:
        """One of the batch's rows of ``model``, found by ``key`` among those that
        ``query(member_ids)`` reads, once, the first time the table is asked for (keyed by
        ``index``); ``new()`` when missing, kept for the next asker."""
        if model not in self._rows:
            self._rows[model] = {index(row): row for row in query(self.member_ids)}
        rows = self._rows[model]
        if key not in rows:
            rows[key] = new()
        return rows[key]

    def memo(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """A value read once per unit of work (e.g. the key action definitions)."""
        if key not in self._memo:
            self._memo[key] = load()
        return self._memo[key]

    def growth_since(self, member_id: int, start: datetime) -> int:
        """The member's growth effective from ``start``: what the ledger held when the batch
        began (one query for all members per window start) plus what the batch posted."""
        sums = self.memo(("growth_since", start), lambda: self._growth_sums(start))
        posted = sum(
            entry.amount
            for entry in self._growth_posted.get(member_id, ())
            if entry.effective_at >= start
        )
        return (sums.get(member_id) or 0) + posted

    def _growth_sums(self, start: datetime) -> dict[int, int]:
        members, params = sql.any_of("member_id", self.member_ids)
        return dict(
            sql.fetch(
                "SELECT member_id, CAST(SUM(amount) AS BIGINT) "
                f"FROM {LedgerEntry._meta.db_table} "
                f"WHERE {members} AND currency = %s AND effective_at >= %s GROUP BY member_id",
                [*params, Currency.GROWTH, start],
            )
        )

    # --- Writing ------------------------------------------------------------------------------

    def post(self, entries: list[LedgerEntry], sources: list[Model | None]) -> None:
        """Ledger entries to write (``ledger_post`` inside a unit of work); an entry's source
        row, if given, is written first and its id becomes the entry's source id."""
        self.entries += entries
        self._sourced += [
            (entry, source) for entry, source in zip(entries, sources, strict=True) if source
        ]
        for entry in entries:
            self.touched.add(entry.member_id)
            if entry.currency == Currency.GROWTH:
                self._growth_posted.setdefault(entry.member_id, []).append(entry)

    def tier_moved(self, standing: MemberStanding, change: TierChange | None = None) -> None:
        """The standing's tier columns changed in memory (and ``change`` records why): the
        flush writes both."""
        self.touched.add(standing.pk)
        if change is not None:
            self.tier_changes.append(change)

    def award(self, award: BadgeAward) -> None:
        """A badge award to write (before the ledger entries of its bonus)."""
        self.awards.append(award)

    def changed(self, row: Model) -> None:
        """Mark a row taken from ``row`` as changed: ``flush`` writes it."""
        self._dirty.setdefault(type(row), {})[id(row)] = row

    def saved(self, row: Model) -> None:
        """A row written at once (e.g. a completed quest): nothing left to flush for it."""
        self._dirty.get(type(row), {}).pop(id(row), None)

    def flush(self) -> None:
        """Write everything, in as few statements as the tables allow: the last step of the
        unit of work. On PostgreSQL the new rows' ids are drawn first, all tables in one
        statement, so that the rows, the changed rows and the leaderboard scores then go in one
        more: two round trips for a single event, where writing table by table took four."""
        new_rows = [
            (model, rows)
            for model, rows in (
                (Event, self.events),
                (BadgeAward, self.awards),
                (LedgerEntry, self.entries),
                (PointLot, self.lots),
                (LotMovement, self.lot_movements),
                (TierChange, self.tier_changes),
            )
            if rows
        ]
        if connection.vendor != "postgresql":
            self._changed_rows_writes()  # written at once off PostgreSQL
            for model, rows in new_rows:
                if model is LedgerEntry:
                    self._link_sources()
                insert(model, rows)
            self._add_scores([])
            return
        _draw_ids(new_rows)
        self._link_sources()
        writes = self._changed_rows_writes()
        # Listed in the order the rows point at each other (an entry at its event, a lot at
        # its entry): a table copied on its own goes after the writes of those before it.
        for model, rows in new_rows:
            _link_and_stamp(model, rows)
            if len(rows) < COPY_FROM_ROWS:
                writes.append(_insert_write(model, rows))
            else:
                send(writes)
                writes = []
                _copy(model, rows)
            _written(rows)
        self._add_scores(writes)

    def _link_sources(self) -> None:
        """An entry's source id is its source row's, known once that row has an id."""
        for entry, source in self._sourced:
            entry.source_id = str(source.pk)

    def _add_scores(self, along: list[Write]) -> None:
        """Add the leaderboard score deltas, with ``along`` in their statement."""
        if not self.scores:
            send(along)
            return
        self._add_scores_to_store(self.scores, along)

    def _changed_rows_writes(self) -> list[Write]:
        """The upserts of the changed rows and the standings' update, as statements to send
        (PostgreSQL); elsewhere they are written at once and nothing is left to send."""
        writes = [
            write
            for model, rows in self._dirty.items()
            for write in _upsert_write(model, list(rows.values()), *UPSERTS[model])
        ]
        standings = [self.standings[pk] for pk in sorted(self.touched)]
        now = timezone.now()
        for standing in standings:
            standing.updated_at = now
        fields = [
            *BUCKETS,
            "points_owed",
            "events_count",
            "last_event_at",
            "tier",
            "tier_since",
            "grace_until",
        ]
        return writes + columns_write(MemberStanding, standings, [*fields, "updated_at"])


@contextmanager
def unit_of_work(
    standings: dict[int, MemberStanding],
    external_ids: dict[int, str],
    *,
    since: datetime,
    add_scores: "AddScores",
) -> Iterator[UnitOfWork]:
    """Run the flow for these locked standings; the caller flushes before leaving.
    ``add_scores(deltas, along)`` writes the leaderboard score deltas with ``along`` (the
    leaderboard store, which sits above this layer)."""
    work = UnitOfWork(standings, external_ids, since, add_scores)
    token = _current.set(work)
    try:
        yield work
    finally:
        _current.reset(token)


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
    them and cost 0.14 ms to parse again on every event. Encoding JSON is C; so is the server's
    reading it. After the columns comes ``n``, the rows' order from 1."""
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


def _upsert_write(
    model: type[Model], rows: list[Model], unique: list[str], changed: list[str]
) -> list[Write]:
    """Insert the rows, or update ``changed`` where a row with the same ``unique`` fields is
    there. On PostgreSQL the statement to send (one ``INSERT … SELECT FROM unnest(…) ON
    CONFLICT``); elsewhere it is written at once (``bulk_create``) and nothing is left to send."""
    if not rows:
        return []
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


def _insert_returning(model: type[Model], rows: list[Model], along: list[Write]) -> None:
    """A few new rows in one ``INSERT … SELECT … RETURNING id``: what ``bulk_create`` sends,
    without building the statement again for every call; ``along`` goes in it too."""
    fields = _insertable(model)
    _link_and_stamp(model, rows)
    source, params = _unnest(fields, rows)
    with connection.cursor() as cursor:
        cursor.execute(*joined(along, _insert_sql(model, source, returning=True), params))
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


def insert(model: type[Model], rows: list[Model], *, along: list[Write] | None = None) -> None:
    """Insert new rows (ids are set on them). On PostgreSQL: by ``COPY`` when there are many,
    ids drawn from the table's sequence first so rows written later can point at them; else by
    one ``INSERT … RETURNING``. ``bulk_create`` elsewhere.

    ``along``: writes answering nothing, to other tables, that neither need these rows nor are
    needed by them: sent in the same statement when it is one ``INSERT`` (a round trip less),
    else just before."""
    along = along or []
    if rows and connection.vendor == "postgresql" and len(rows) < COPY_FROM_ROWS:
        _insert_returning(model, rows, along)
        return
    send(along)
    if not rows:
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
