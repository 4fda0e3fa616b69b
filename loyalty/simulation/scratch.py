"""A scratch copy of the program's tables, where a simulation runs the real engine.

The scratch is a PostgreSQL schema of its own (``sim_…``) holding an empty, unlogged copy of
every table of the loyalty, accounts and rewards apps (``LIKE … INCLUDING ALL``: columns,
defaults, identities, constraints and indexes; no foreign keys), with the program's definition
and the members copied in. Inside ``scratch_session`` the database connection looks there
first (``search_path``), so every query the engine sends — the ORM's and our own SQL — reads
and writes the scratch, and nothing reaches the live tables; commits there are not waited for
(``synchronous_commit off``). Leaderboard scores go to the scratch's tables, not to Redis. The
schema is dropped afterwards.
"""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from django.apps import apps
from django.db import connection, models

from loyalty.program import compiled
from loyalty.scores import counting
from loyalty.scores.db_store import DatabaseLeaderboardStore

APPS = ("accounts", "loyalty", "rewards")

# The tables whose rows a simulation starts from: the program's definition and the members.
# Everything else (standings, ledger, events, …) starts empty and is made by the replay.
COPIED = (
    "loyalty.Program",
    "loyalty.Action",
    "loyalty.EarningRule",
    "loyalty.EarningRuleVersion",
    "loyalty.RuleCondition",
    "loyalty.RuleCap",
    "loyalty.Tier",
    "loyalty.Privilege",
    "loyalty.Badge",
    "loyalty.Streak",
    "loyalty.Quest",
    "loyalty.QuestStep",
    "loyalty.Leaderboard",
    "loyalty.Segment",
    "loyalty.SegmentCondition",
    "loyalty.KeyAction",
    "loyalty.Gift",
    "accounts.Member",
    "rewards.CouponPool",
    "rewards.Reward",
)


def _tables() -> list[str]:
    """Every table of the apps, the many-to-many ones included."""
    tables = []
    for label in APPS:
        for model in apps.get_app_config(label).get_models(include_auto_created=True):
            if model._meta.managed and not model._meta.proxy:
                tables.append(model._meta.db_table)
    return sorted(set(tables))


def _copied_tables() -> list[str]:
    tables = []
    for name in COPIED:
        model = apps.get_model(name)
        tables.append(model._meta.db_table)
        for field in model._meta.many_to_many:
            tables.append(field.remote_field.through._meta.db_table)
    return tables


def _identity_column(table: str) -> str | None:
    for model in apps.get_models(include_auto_created=True):
        if model._meta.db_table == table:
            pk = model._meta.pk
            auto = isinstance(pk, models.AutoField | models.BigAutoField | models.SmallAutoField)
            return pk.column if auto else None
    return None


@contextmanager
def scratch_session() -> Iterator[str]:
    """Create the scratch, point the connection at it for the block, drop it afterwards.
    Yields the schema's name (the live tables stay reachable as ``public.…``)."""
    schema = f"sim_{uuid.uuid4().hex[:12]}"
    with connection.cursor() as cursor:
        cursor.execute(f'CREATE SCHEMA "{schema}"')
        for table in _tables():
            cursor.execute(
                f'CREATE UNLOGGED TABLE "{schema}"."{table}" (LIKE public."{table}" INCLUDING ALL)'
            )
        for table in _copied_tables():
            cursor.execute(f'INSERT INTO "{schema}"."{table}" SELECT * FROM public."{table}"')
            if column := _identity_column(table):
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence(%s, %s), "
                    f'COALESCE((SELECT max("{column}") FROM "{schema}"."{table}"), 0) + 1, false)',
                    [f'"{schema}"."{table}"', column],
                )
    store, counting.override = counting.override, DatabaseLeaderboardStore()
    point_at(schema)
    try:
        yield schema
    finally:
        counting.override = store
        point_at(None)
        with connection.cursor() as cursor:
            cursor.execute(f'DROP SCHEMA "{schema}" CASCADE')


def point_at(schema: str | None) -> None:
    """Point this process's connection at the scratch (None: back at the live tables), and
    forget the program compiled from the other."""
    with connection.cursor() as cursor:
        if schema is None:
            cursor.execute("SET search_path TO DEFAULT")
            cursor.execute("SET synchronous_commit TO DEFAULT")
        else:
            cursor.execute(f'SET search_path TO "{schema}"')
            cursor.execute("SET synchronous_commit TO off")
    compiled.forget()
