"""The event pipeline: the one place that orders a batch's steps.

Input → idempotency (stored keys answered as replays, repeats within the batch) → chunks of
about ``CHUNK_EVENTS`` events (a member's all in one) → per chunk, one transaction: every
standing locked in one global order → one unit of work → each event's steps
(``loyalty.engine.record``) → flush → after-commit effects (queued by the steps). A chunk that
loses a race on an idempotency key, or deadlocks, is rolled back and run again.
"""

from collections.abc import Iterable
from itertools import groupby

from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from accounts.errors import MemberNotFound
from accounts.models import ApiClient, Member
from core import sql
from core.errors import DomainError
from core.idempotency import IdempotencyConflict
from loyalty.engine.observers import events_recorded
from loyalty.engine.record import Item, record_one
from loyalty.ledger.session import add_scores
from loyalty.models import (
    MemberStanding,
    Program,
)
from loyalty.persistence.locks import lock_standings, lock_standings_in_order, lock_standings_of
from loyalty.persistence.queries import stored_events
from loyalty.persistence.unit_of_work import unit_of_work
from loyalty.program.compiled import CompiledProgram, compiled_program, program_at
from loyalty.scores.counting import leaderboards_count_entries


def record_items(
    client: ApiClient | None,
    items: list[Item],
    errors: dict[int, DomainError],
    dry_run: bool,
    chunk_events: int | None = None,
) -> None:
    todo = sorted(
        (item for item in items if item.index not in errors),
        key=lambda item: (item.event.external_id, item.index),
    )
    repeats: list[tuple[Item, Item]] = []
    if not dry_run:
        if len(todo) > 1:
            # A retried batch is answered without taking locks. One event does not look
            # first: that would cost every new event a query to spare a retry one attempt.
            todo = _settle_stored(client, todo, errors)
        todo, repeats = _split_repeats(todo, errors)
    for chunk in _chunks(todo, chunk_events or CHUNK_EVENTS):
        _record_chunk(client, chunk, errors, dry_run)
    for item, first in repeats:
        if first.index in errors:
            errors[item.index] = errors[first.index]
        else:
            item.stored, item.outcome, item.replayed = first.stored, first.outcome, True


# A batch's items go in transactions of about this many events (a member's all in one).
CHUNK_EVENTS = 100


def _chunks(items: list[Item], size: int) -> Iterable[list[Item]]:
    """The items (in member order) cut into chunks of about ``size``, never between two items
    of one member: their answers depend on each other."""
    chunk: list[Item] = []
    for _, group in groupby(items, key=lambda item: item.event.external_id):
        member_items = list(group)
        if chunk and len(chunk) + len(member_items) > size:
            yield chunk
            chunk = []
        chunk += member_items
    if chunk:
        yield chunk


# How many times a chunk is run again after losing a race (a key stored first, a deadlock).
RETRIES = 2


def _record_chunk(
    client: ApiClient | None,
    items: list[Item],
    errors: dict[int, DomainError],
    dry_run: bool,
) -> None:
    ordered, retries = False, 0
    while True:
        found: dict[int, DomainError] = {}
        # Where the database refuses a second event under a key, the first attempt does not
        # look for the keys under the locks: a retry of one of these that committed while we
        # waited makes the flush fail on the key, and the next attempt looks.
        probe = retries > 0 or not _key_constraint_holds()
        try:
            _record_locked(client, items, found, dry_run, probe=probe, ordered=ordered)
        except _LockOrder:
            # Rolled back, its locks released: the next attempt takes them in one ordered pass.
            ordered = True
        except (IntegrityError, OperationalError) as error:
            # Another request stored one of these idempotency keys first (the next attempt
            # answers that item as the replay or conflict it is), or the database broke a
            # deadlock by rolling this chunk back: run it again.
            if retries == RETRIES or not (
                isinstance(error, IntegrityError) or sql.lost_a_race(error)
            ):
                raise
            retries += 1
        else:
            errors.update(found)
            return
        for item in items:
            item.stored, item.outcome, item.replayed = None, None, False


class _LockOrder(Exception):
    """A chunk's member whose standing was not locked with the others sorts below one that
    was: locking it now would break the one global order (ascending member id) that keeps
    concurrent chunks from deadlocking."""


def _key_constraint_holds() -> bool:
    """Whether the database refuses a second event under a key: the constraint, with its NULLS
    NOT DISTINCT for client-less events, exists only where that is supported (not SQLite)."""
    return connection.features.supports_nulls_distinct_unique_constraints


def _record_locked(
    client: ApiClient | None,
    todo: list[Item],
    errors: dict[int, DomainError],
    dry_run: bool,
    *,
    probe: bool,
    ordered: bool,
) -> None:
    """Record the items in one transaction, under their members' locks; with ``probe``, look
    for their keys first.

    Every standing is locked in ascending member id. Usually one statement locks them all,
    with the members and the program's revision (``_lock_known``); members it did not find
    (new, or without a standing yet) are locked after, which keeps the order when their ids
    are higher, as a new member's always is. When one sorts lower, the attempt gives up its
    locks (``_LockOrder``) and the next, ``ordered``, finds the members first and locks every
    standing in one ascending pass (``lock_standings_in_order``)."""
    try:
        with transaction.atomic():
            if ordered:
                if probe and not dry_run:
                    todo = _settle_stored(client, todo, errors)
                standings, members, program = _lock_in_order(todo)
            else:
                standings, members, program = _lock_known(todo)
                if probe and not dry_run:
                    # A retry of one of these may have committed while we waited for the
                    # locks; looked for before any member is created, so a refused item
                    # creates none.
                    todo = _settle_stored(client, todo, errors)
                members = _add_new_members(todo, members, standings, program)
            todo = _with_members(todo, members, errors)
            with unit_of_work(
                standings,
                {item.member.pk: item.member.external_id for item in todo},
                since=min(
                    (item.event.occurred_at or timezone.now() for item in todo),
                    default=timezone.now(),
                ),
                add_scores=add_scores,
            ) as work:
                for item in todo:
                    item.stored, item.outcome = record_one(
                        client, item, standings[item.member.pk], program, work
                    )
                if dry_run:
                    raise _DryRunDone
                leaderboards_count_entries(work=work, boards=program.leaderboards)
                work.flush()
                events_recorded(program, [item.stored for item in todo])
    except _DryRunDone:
        pass


class _DryRunDone(Exception):
    """Raised to roll a dry run back."""


def _settle_stored(
    client: ApiClient | None, items: list[Item], errors: dict[int, DomainError]
) -> list[Item]:
    """Answer the items whose key is already stored (a replay, or a conflict if the body
    differs); return the others."""
    stored = {
        event.idempotency_key: event
        for event in stored_events(client, [item.event.idempotency_key for item in items])
    }
    left = []
    for item in items:
        event = stored.get(item.event.idempotency_key)
        if event is None:
            left.append(item)
        elif event.request_hash != item.request_hash:
            errors[item.index] = IdempotencyConflict(
                details={"idempotency_key": item.event.idempotency_key}
            )
        else:
            item.stored, item.outcome, item.replayed = event, event.outcome, True
    return left


def _split_repeats(
    items: list[Item], errors: dict[int, DomainError]
) -> tuple[list[Item], list[tuple[Item, Item]]]:
    """The same key twice in one batch: the later item is the first's retry (answered with its
    outcome), or a conflict if its body differs. Returns the firsts and ``(retry, first)``."""
    firsts: dict[str, Item] = {}
    repeats = []
    for item in items:
        first = firsts.setdefault(item.event.idempotency_key, item)
        if first is item:
            continue
        if item.request_hash != first.request_hash:
            errors[item.index] = IdempotencyConflict(
                details={"idempotency_key": item.event.idempotency_key}
            )
        else:
            repeats.append((item, first))
    return list(firsts.values()), repeats


def _lock_known(
    items: list[Item],
) -> tuple[dict[int, MemberStanding], dict[str, Member], CompiledProgram]:
    """Lock the standings of the items' members who have one: one query (standings locked in
    primary-key order, members and the program's revision read beside them). Also the program
    to evaluate with, at its revision of that query."""
    standings, revision = lock_standings_of({item.event.external_id for item in items})
    members = {standing.member.external_id: standing.member for standing in standings.values()}
    return standings, members, program_at(revision)


def _add_new_members(
    items: list[Item],
    members: dict[str, Member],
    standings: dict[int, MemberStanding],
    program: CompiledProgram,
) -> dict[str, Member]:
    """The items' other members: found, created if unknown and the program says so, their
    standings locked (``lock_standings``, added to ``standings``). Returns every member known.
    Raises ``_LockOrder`` if one of them sorts below a standing already locked."""
    if missing := {item.event.external_id for item in items} - members.keys():
        found = _find_members(missing, create=_creates_members(program))
        if standings and found and min(m.pk for m in found.values()) < max(standings):
            raise _LockOrder
        members.update(found)
        standings.update(lock_standings(m.pk for m in found.values()))
    return members


def _lock_in_order(
    items: list[Item],
) -> tuple[dict[int, MemberStanding], dict[str, Member], CompiledProgram]:
    """The items' members found (created if unknown and the program says so) before any lock,
    then every standing locked in one ascending pass; the program at the revision read with
    the last of them."""
    members = _find_members(
        {item.event.external_id for item in items}, create=_creates_members(compiled_program())
    )
    standings, revision = lock_standings_in_order(m.pk for m in members.values())
    return standings, members, program_at(revision)


def _creates_members(program: CompiledProgram) -> bool:
    return program.unknown_members != Program.UnknownMembers.REFUSE


def _find_members(external_ids: set[str], *, create: bool) -> dict[str, Member]:
    """The members with these host ids, those unknown created first if ``create``."""
    wanted = sorted(external_ids)
    found = {m.external_id: m for m in Member.objects.filter(sql.AnyOf("external_id", wanted))}
    if create and (unknown := sorted(external_ids - found.keys())):
        Member.objects.bulk_create(
            [Member(external_id=external_id) for external_id in unknown], ignore_conflicts=True
        )
        found.update(
            (m.external_id, m) for m in Member.objects.filter(sql.AnyOf("external_id", unknown))
        )
    return found


def _with_members(
    items: list[Item], members: dict[str, Member], errors: dict[int, DomainError]
) -> list[Item]:
    """The items whose member is known; the others are answered ``member_not_found``."""
    left = []
    for item in items:
        item.member = members.get(item.event.external_id)
        if item.member is None:
            errors[item.index] = MemberNotFound(details={"external_id": item.event.external_id})
        else:
            left.append(item)
    return left
