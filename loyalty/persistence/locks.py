"""Row locks on member standings: the one place they are taken.

Every write to a member's balances, counters or tier happens inside a transaction holding that
member's standing row lock. Several members are always locked in ascending member id, creation
of a missing standing included, so two transactions never wait on each other in a circle
(``loyalty.engine.pipeline`` keeps the order across members it finds late; it also retries a
chunk the database rolled back to break a deadlock, should one ever happen).
"""

import uuid
from collections.abc import Iterable
from itertools import groupby

from django.db import connection

from accounts.models import Member
from core import sql
from loyalty.models import MemberStanding, Program
from loyalty.program.compiled import REVISION_SQL, CompiledProgram, program_at


def lock_standing(member_id: int) -> MemberStanding:
    """Lock (creating if needed) the member's standing row. Call inside ``transaction.atomic``."""
    return lock_standings([member_id])[member_id]


def lock_standing_with_program(member_id: int) -> tuple[MemberStanding, CompiledProgram]:
    """``lock_standing``, and the program at the revision read in the same statement: for a
    flow that needs both, one round trip less than asking ``compiled_program`` apart."""
    standings, revision = _lock_standings([member_id])
    return standings[member_id], program_at(revision)


def lock_standings(member_ids: Iterable[int]) -> dict[int, MemberStanding]:
    """Lock (creating if needed) several members' standings, in primary-key order: one
    statement, two more for members without one yet. Call inside ``transaction.atomic``."""
    return _lock_standings(member_ids)[0]


def _lock_standings(
    member_ids: Iterable[int],
) -> tuple[dict[int, MemberStanding], uuid.UUID | None]:
    ids = sorted(set(member_ids))
    standings, revision = _locked(ids)
    if missing := [member_id for member_id in ids if member_id not in standings]:
        _create(missing)
        created, revision = _locked(missing)
        standings.update(created)
    return standings, revision


def lock_standings_in_order(
    member_ids: Iterable[int],
) -> tuple[dict[int, MemberStanding], uuid.UUID | None]:
    """Lock (creating where missing) the standings strictly in ascending member id, creations
    included, and the program's revision read with the last: for members without a standing
    sorting among members with one, where ``lock_standings`` (which locks those it finds, then
    creates the others) would break the order. A statement per run of ids with or without a
    standing, one more to tell them apart. Call inside ``transaction.atomic``."""
    ids = sorted(set(member_ids))
    where, params = sql.any_of("member_id", ids)
    have = {
        member_id
        for (member_id,) in sql.fetch(
            f"SELECT member_id FROM {MemberStanding._meta.db_table} WHERE {where}", params
        )
    }
    standings: dict[int, MemberStanding] = {}
    revision = None
    for exists, run in groupby(ids, key=have.__contains__):
        run = list(run)
        if not exists:
            _create(run)
        locked, revision = _locked(run)
        standings.update(locked)
    return standings, revision


def _create(member_ids: list[int]) -> None:
    """New standings for these members. Racing creators: ON CONFLICT DO NOTHING lets one insert
    win, then both lock it."""
    MemberStanding.objects.bulk_create(
        [MemberStanding(member_id=member_id) for member_id in member_ids], ignore_conflicts=True
    )


def _locked(member_ids: list[int]) -> tuple[dict[int, MemberStanding], uuid.UUID | None]:
    """The standings locked, and the program's revision read beside them (None if none)."""
    where, params = sql.any_of("t.member_id", member_ids)
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    rows = sql.fetch(
        f"SELECT {sql.columns(MemberStanding, 't')}, {REVISION_SQL} "
        f"FROM {MemberStanding._meta.db_table} t WHERE {where} ORDER BY t.member_id{lock}",
        params,
    )
    standings = {standing.pk: standing for standing in sql.rows_to(MemberStanding, rows)}
    return standings, _revision(rows)


def _revision(rows: list[tuple]) -> uuid.UUID | None:
    """The program's revision, read as the rows' last column (text on SQLite)."""
    if not rows or rows[0][-1] is None:
        return None
    return Program._meta.get_field("revision").to_python(rows[0][-1])


def lock_standings_of(
    external_ids: Iterable[str],
) -> tuple[dict[int, MemberStanding], uuid.UUID | None]:
    """Lock the standings of the members with these host ids, in primary-key order, each with
    its ``member`` read beside it, and the program's revision with them (the event flow's first
    statement reads what it evaluates with in one round trip): one statement. Members without a
    standing (or unknown) are not in the answer; lock theirs with ``lock_standings``. The
    revision is None when no standing was locked. Call inside ``transaction.atomic``."""
    where, params = sql.any_of("m.external_id", sorted(set(external_ids)))
    lock = " FOR UPDATE OF s" if connection.features.has_select_for_update_of else ""
    rows = sql.fetch(
        f"SELECT {sql.columns(MemberStanding, 's')}, {sql.columns(Member, 'm')}, {REVISION_SQL} "
        f"FROM {MemberStanding._meta.db_table} s "
        f"JOIN {Member._meta.db_table} m ON m.id = s.member_id "
        f"WHERE {where} ORDER BY s.member_id{lock}",
        params,
    )
    width = len(MemberStanding._meta.concrete_fields)
    standings = {}
    for standing, member in zip(
        sql.rows_to(MemberStanding, rows), sql.rows_to(Member, rows, start=width), strict=True
    ):
        standing.member = member
        standings[standing.pk] = standing
    return standings, _revision(rows)
