"""Hot-path reads and writes, as statements whose text is built once.

Every request authenticates its client, and every event or redemption reads and writes the same
handful of rows (the member's standing, tallies, quest progress, badge awards, recent growth,
point lots). Building and compiling a queryset for each costs about as much Python as running
it, so these statements are written as SQL, kept as text per model, and rows are turned into
model instances the way the ORM does (``Model.from_db`` after the fields' converters). They run
on PostgreSQL and SQLite alike: ``any_of`` writes a list membership each understands.
"""

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, connections
from django.db.models import BooleanField, Expression, F, Field, Model
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init


@functools.cache
def cast_type(field: Field, alias: str = DEFAULT_DB_ALIAS) -> str:
    """The field's column type to cast a parameter to, without a length or precision: an
    explicit cast to ``varchar(64)`` cuts a longer value short, where the column itself refuses
    it (and a cut value could match another row). Kept: a foreign key works its type out anew,
    making a field, every time it is asked."""
    return field.db_type(connections[alias]).split("(")[0]


def any_of(column: str, values: Sequence[Any]) -> tuple[str, list[Any]]:
    """``column`` is one of ``values``, as SQL and its one parameter: an array on PostgreSQL
    (the text does not grow with the list), a JSON list elsewhere.

    One value goes as ``column = %s`` on PostgreSQL. Planning a kept statement for an array
    parameter, the server assumes ten elements, so it never trusts a plan made once for all
    (which would cost ten times one made for the one value) and plans the statement again at
    every run, which costs the database more than running its reads. An equality is planned
    once per connection."""
    if connection.vendor == "postgresql":
        if len(values) == 1:
            return f"{column} = %s", [values[0]]
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN (SELECT value FROM json_each(%s))", [json.dumps(list(values))]


class AnyOf(Expression):
    """``field`` is one of ``values``, as a filter: ``Model.objects.filter(AnyOf("id", ids))``.
    On PostgreSQL one array parameter (``= ANY``): the statement's text does not grow with the
    list, so the driver keeps it parsed; elsewhere ``IN``."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, field: str, values: Sequence[Any]):
        super().__init__()
        self.name, self.values = field, list(values)

    def resolve_expression(self, query=None, allow_joins=True, reuse=None, summarize=False, **kw):
        resolved = self.copy()
        resolved.lhs = F(self.name).resolve_expression(query, allow_joins, reuse, summarize)
        return resolved

    def as_sql(self, compiler, connection):
        lhs, params = compiler.compile(self.lhs)
        field = self.lhs.output_field
        values = [field.get_db_prep_value(value, connection) for value in self.values]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::{cast_type(field, connection.alias)}[])", [*params, values]
        if not values:
            return "1 = 0", params
        return f"{lhs} IN ({', '.join(['%s'] * len(values))})", [*params, *values]


# The SQLSTATEs of a transaction the database rolled back to settle a race: a deadlock, or a
# serialization failure. Running it again is the remedy.
_LOST_RACE = {"40P01", "40001"}


def lost_a_race(error: DatabaseError) -> bool:
    """Whether the database rolled the transaction back to break a deadlock (or a
    serialization conflict): nothing was wrong with it, and it may be run again."""
    return getattr(error.__cause__, "sqlstate", None) in _LOST_RACE


def list_of(column: str, source: str) -> str:
    """A value of each row: the list of ``column`` over ``source`` (a table and its ``WHERE``,
    which may refer to the outer row), a related row's ids read in the same statement. Read it
    with ``listed``."""
    if connection.vendor == "postgresql":
        return f"ARRAY(SELECT {column} FROM {source})"
    return f"(SELECT json_group_array({column}) FROM {source})"


def listed(value: Any) -> list[Any]:
    """The list a ``list_of`` column holds (a JSON array elsewhere than on PostgreSQL)."""
    return value if isinstance(value, list) else json.loads(value)


@functools.cache
def _shape(model: type[Model], alias: str) -> tuple[str, list[str], list[tuple[int, Any, list]]]:
    """The model's columns (prefixed by ``alias``), field names, and the converters to apply
    to each value read (by position): what the ORM applies when it reads the model."""
    fields = model._meta.concrete_fields
    columns = ", ".join(f"{alias}.{connection.ops.quote_name(f.column)}" for f in fields)
    converters = []
    for position, field in enumerate(fields):
        col = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(col) + field.get_db_converters(connection)
        if found:
            converters.append((position, col, found))
    return columns, [f.attname for f in fields], converters


def columns(model: type[Model], alias: str) -> str:
    """The model's columns as a select list, for ``rows_to``."""
    return _shape(model, alias)[0]


def _init_listened(model: type[Model]) -> bool:
    """Whether something listens to the model's ``pre_init`` or ``post_init``: instances must
    then be made by ``Model.__init__``, which sends them."""
    return pre_init.has_listeners(model) or post_init.has_listeners(model)


def rows_to(model: type[Model], rows: Sequence[Sequence[Any]], start: int = 0) -> list[Model]:
    """Model instances from rows whose values from ``start`` on are ``columns(model, …)``.

    They are what ``Model.from_db`` makes: every field set, the state of a loaded row. Unless
    something listens to the model's ``pre_init`` or ``post_init`` signals, they are made
    without running ``Model.__init__`` (its per-field loop and signals), which costs about twice
    as much, on reads that make ten rows an event."""
    _, names, converters = _shape(model, "t")
    end = start + len(names)
    alias = connection.alias
    plain = not _init_listened(model)
    made = []
    for row in rows:
        values = list(row[start:end])
        for position, col, found in converters:
            for converter in found:
                values[position] = converter(values[position], col, connection)
        if plain:
            instance = model.__new__(model)
            instance.__dict__.update(zip(names, values, strict=True))
            state = instance._state = ModelState()
            state.adding, state.db = False, alias
            made.append(instance)
        else:
            made.append(model.from_db(alias, names, values))
    return made


@functools.cache
def _new_shape(
    model: type[Model],
) -> tuple[tuple[Field, str, str | None, tuple[str, type[Model]] | None], ...]:
    """Per concrete field: the field, its attribute, its name if it holds a relation, and for a
    plain foreign key the target's attribute it copies and the model it must be."""
    return tuple(
        (
            f,
            f.attname,
            f.name if f.is_relation else None,
            (f.target_field.attname, f.remote_field.model._meta.concrete_model)
            if f.many_to_one and not f.one_to_one and len(f.related_fields) == 1
            else None,
        )
        for f in model._meta.concrete_fields
        if not getattr(f, "generated", False)
    )


def new_row(model: type[Model], **values: Any) -> Model:
    """A new, unsaved instance: what ``model(**values)`` makes (fields given by attribute or,
    for a relation, by the related object; defaults for the others), made without running
    ``Model.__init__`` unless something listens to the model's ``pre_init`` or ``post_init``:
    less than half the keyword constructor's cost, for rows an event makes five of.

    A foreign key given as an object is set as its descriptor sets it (the id copied, the object
    cached, both rows on one database) without the descriptor's router checks, when no router
    is configured: the descriptor's checks would be paid 13 times an event in a batch."""
    if _init_listened(model):
        return model(**values)
    instance = model.__new__(model)
    state = instance._state = ModelState()
    fields = instance.__dict__
    related = []
    for field, attname, name, plain in _new_shape(model):
        if attname in values:
            fields[attname] = values.pop(attname)
        elif name is not None and name in values:
            target = values.pop(name)
            if target is None or plain is None or settings.DATABASE_ROUTERS:
                fields[attname] = None
                related.append((name, target))
                continue
            target_attname, target_model = plain
            if not isinstance(target, target_model):
                related.append((name, target))  # the descriptor raises its own error
                continue
            if state.db is None:
                state.db = target._state.db or DEFAULT_DB_ALIAS
            if target._state.db is None:
                target._state.db = state.db
            fields[attname] = getattr(target, target_attname)
            state.fields_cache[name] = target
        else:
            fields[attname] = field.get_default()
    if values:
        raise TypeError(f"{model.__name__} has no field(s) {', '.join(sorted(values))}")
    for name, target in related:
        setattr(instance, name, target)  # the relation's own descriptor: id and cache
    return instance


def select(model: type[Model], where: str, params: Sequence[Any]) -> list[Model]:
    """The model's rows matching ``where`` (SQL over the table aliased ``t``, which may go on
    with ``ORDER BY``, ``LIMIT`` or ``FOR UPDATE``)."""
    return rows_to(
        model,
        fetch(f"SELECT {columns(model, 't')} FROM {model._meta.db_table} t WHERE {where}", params),
    )


def first(model: type[Model], where: str, params: Sequence[Any]) -> Model | None:
    """The first of ``select``'s rows, or None."""
    found = select(model, where, params)
    return found[0] if found else None


def fetch(sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def execute(sql: str, params: Sequence[Any]) -> int:
    """Run a write; the number of rows it touched."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount
