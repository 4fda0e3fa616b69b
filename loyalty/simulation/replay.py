"""Replaying history through the real engine, inside a scratch (``scratch``).

The live events are read in the order they were recorded, with the live reversals between
them where they were made, and posted again through ``record_events`` and ``event_reverse`` —
the same code the API calls — in batches. What occurred before the period builds each
member's standing under the live program; then the draft is loaded into the scratch (as a
publish would) and what occurred in the period is replayed under it. Each member starts from
nothing, and their standing at the period's start is what the replay of their history made it.

The members are shared out between worker processes (``LOYALTY_SIMULATION_WORKERS``, one per
core by default), each replaying its members' history into the same scratch: a member's events
stay in order in one process, as their answers depend on each other.

Not replayed (so equal on both sides of a comparison): operator adjustments, redemptions,
campaign grants, and the daily jobs (expiry, pending activation, tier review, birthday gifts,
activity states moving on without an event). Reading and posting go batch by batch, so memory
stays flat whatever the history's length.
"""

import json
import os
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connections

from core import sql
from core.errors import DomainError
from loyalty.engine.events import EventInput, record_events
from loyalty.engine.reversals import event_reverse
from loyalty.program.program_file import program_load
from loyalty.simulation.scratch import point_at

# Events posted at once, and per transaction: larger than a request's chunks, as nothing live
# waits on the scratch's locks (a tenth of the replay's time went to per-chunk work at 100).
BATCH = 2_000
CHUNK = 1_000
READ = 5_000


@dataclass
class Replayed:
    events: int = 0
    reversals: int = 0
    refused: int = 0  # events the engine refused under the draft (an attribute it cannot use)
    reversals_refused: int = 0  # reversals of events the draft credited nothing

    def add(self, other: "Replayed") -> None:
        for name in (f.name for f in fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))


class Cancelled(Exception):
    """The operator cancelled the simulation."""


def history_size(end: datetime) -> int:
    """How many events and reversals a replay up to ``end`` posts."""
    ((events,),) = sql.fetch(
        "SELECT count(*) FROM public.loyalty_event WHERE occurred_at < %s", [end]
    )
    ((reversals,),) = sql.fetch(
        "SELECT count(*) FROM public.loyalty_eventreversal r "
        "JOIN public.loyalty_event e ON e.id = r.event_id WHERE e.occurred_at < %s",
        [end],
    )
    return events + reversals


@dataclass(frozen=True)
class Part:
    """What one worker replays: the events that occurred in [since, until) of the members
    whose id leaves ``worker`` when divided by ``workers``, and their reversals."""

    since: datetime | None
    until: datetime
    worker: int = 0
    workers: int = 1

    def where(self) -> tuple[str, list]:
        since = self.since or datetime.min.replace(tzinfo=self.until.tzinfo)
        return (
            "e.occurred_at >= %s AND e.occurred_at < %s AND e.member_id %% %s = %s",
            [since, self.until, self.workers, self.worker],
        )


def _timeline(part: Part) -> Iterator[tuple[str, tuple]]:
    """The part's events and reversals in the order they were made, read page by page from the
    live tables (named with their schema: the connection looks at the scratch first)."""
    where, params = part.where()
    reversals = sql.fetch(
        "SELECT r.created_at, r.id, r.event_id, r.amount FROM public.loyalty_eventreversal r "
        f"JOIN public.loyalty_event e ON e.id = r.event_id WHERE {where} "
        "ORDER BY r.created_at, r.id",
        params,
    )
    waiting = iter(reversals)
    reversal = next(waiting, None)
    after = 0
    while True:
        page = sql.fetch(
            "SELECT e.id, e.received_at, m.external_id, e.action_code, e.occurred_at, "
            "e.attributes FROM public.loyalty_event e "
            "JOIN public.accounts_member m ON m.id = e.member_id "
            f"WHERE e.id > %s AND {where} ORDER BY e.id LIMIT %s",
            [after, *params, READ],
        )
        if not page:
            break
        for row in page:
            while reversal is not None and reversal[0] < row[1]:
                yield "reversal", reversal
                reversal = next(waiting, None)
            yield "event", row
        after = page[-1][0]
    while reversal is not None:
        yield "reversal", reversal
        reversal = next(waiting, None)


RUNS = "public.loyalty_simulationrun"


def _progress(run_id: int | None, posted: int) -> None:
    """Count what was posted on the run's row, and stop if the operator cancelled it."""
    if run_id is None:
        return
    (cancel,) = sql.fetch(
        f"UPDATE {RUNS} SET done = done + %s WHERE id = %s RETURNING cancel_requested",
        [posted, run_id],
    )[0]
    if cancel:
        raise Cancelled


def replay_part(part: Part, run_id: int | None = None) -> Replayed:
    """Post the part's history through the engine, in batches, into the scratch the connection
    points at."""
    done = Replayed()
    where, params = part.where()
    reversed_ids = {
        event_id
        for (event_id,) in sql.fetch(
            "SELECT DISTINCT r.event_id FROM public.loyalty_eventreversal r "
            f"JOIN public.loyalty_event e ON e.id = r.event_id WHERE {where}",
            params,
        )
    }
    replayed_as: dict[int, int] = {}  # live event id → scratch event id, for reversed events
    batch: list[tuple[int, EventInput]] = []

    def post() -> None:
        results = record_events(
            client=None, events=[event for _id, event in batch], chunk_events=CHUNK
        )
        for (live_id, _event), result in zip(batch, results, strict=True):
            if result.error is not None:
                done.refused += 1
            elif live_id in reversed_ids:
                replayed_as[live_id] = result.result.event_id
        done.events += len(batch)
        _progress(run_id, len(batch))
        batch.clear()

    def reverse(row: tuple) -> None:
        _created, reversal_id, event_id, amount = row
        done.reversals += 1
        if event_id not in replayed_as:
            done.reversals_refused += 1  # its event was refused in the replay
            return
        try:
            event_reverse(
                client=None,
                event_id=replayed_as[event_id],
                idempotency_key=f"replay-{reversal_id}",
                amount=Decimal(amount) if amount is not None else None,
            )
        except DomainError:
            done.reversals_refused += 1  # e.g. the draft credited the event nothing
        _progress(run_id, 1)

    for kind, row in _timeline(part):
        if kind == "reversal":
            if batch:
                post()
            reverse(row)
            continue
        live_id, _received, external_id, action, occurred_at, attributes = row
        event = EventInput(
            external_id=external_id,
            action=action,
            idempotency_key=f"replay-{live_id}",
            occurred_at=occurred_at,
            # Django reads json columns as text (its fields decode them).
            attributes=json.loads(attributes) if attributes else {},
        )
        batch.append((live_id, event))
        if len(batch) >= BATCH:
            post()
    if batch:
        post()
    return done


def workers() -> int:
    """Worker processes to replay with. Forking is safe from a process with one thread (a
    Celery worker's, the command's); from a threaded one (a web server running tasks inline)
    the replay stays in the process."""
    if threading.active_count() > 1:
        return 1
    return max(1, settings.LOYALTY_SIMULATION_WORKERS or os.cpu_count() or 1)


def replay(
    *,
    schema: str,
    start: datetime,
    end: datetime,
    definition: dict[str, Any] | None,
    run_id: int | None = None,
    processes: int | None = None,
) -> Replayed:
    """Replay the history up to ``end`` into ``schema``. With a ``definition`` (a program
    file), in two parts: what occurred before ``start`` under the live program — each member's
    standing at the period's start — then the draft is loaded and what occurred in the period
    is replayed under it. Without one, the whole history in the order it was recorded, under
    the live program. Progress and cancellation go through the run's row (``run_id``)."""
    processes = processes or workers()
    done = Replayed()
    periods = [(None, end)] if definition is None else [(None, start), (start, end)]
    for index, (since, until) in enumerate(periods):
        if index == 1:
            program_load(data=definition, switch_off_missing=True)
        parts = [Part(since, until, worker, processes) for worker in range(processes)]
        for part_done in _in_processes(schema, parts, run_id):
            done.add(part_done)
    return done


def _in_processes(schema: str, parts: list[Part], run_id: int | None) -> list[Replayed]:
    """Each part in a process of its own (forked: the worker inherits the loaded Django, and
    opens its own connection to the scratch), or here when there is one part."""
    if len(parts) == 1:
        return [replay_part(parts[0], run_id)]
    connections.close_all()  # a connection must never be shared across a fork
    children = []
    for part in parts:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            os.close(read)
            answer: dict[str, Any]
            try:
                point_at(schema)
                answer = {"done": vars(replay_part(part, run_id))}
            except Cancelled:
                answer = {"cancelled": True}
            except BaseException:
                answer = {"error": traceback.format_exc(limit=8)}
            with os.fdopen(write, "w") as out:
                out.write(json.dumps(answer))
            connections.close_all()
            os._exit(0)
        os.close(write)
        children.append((pid, read))
    answers = []
    for pid, read in children:
        with os.fdopen(read) as inbox:
            text = inbox.read()
        os.waitpid(pid, 0)
        answers.append(json.loads(text) if text else {"error": "The worker died."})
    point_at(schema)  # this process's connection was closed before the fork
    if errors := [a["error"] for a in answers if "error" in a]:
        raise ReplayFailed("\n".join(errors))
    if any("cancelled" in a for a in answers):
        raise Cancelled
    return [Replayed(**a["done"]) for a in answers]


class ReplayFailed(Exception):
    """A worker process failed; its traceback is the message."""
