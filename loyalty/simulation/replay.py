"""Replaying history through the real engine, inside a scratch (``scratch``).

The live events are read in the order they were recorded, with the live reversals between
them where they were made, and posted again through ``record_events`` and ``event_reverse`` —
the same code the API calls — in batches. What occurred before the period builds each
member's standing under the live program; then the draft is loaded into the scratch (as a
publish would) and what occurred in the period is replayed under it. Each member starts from
nothing, and their standing at the period's start is what the replay of their history made it.

Not replayed (so equal on both sides of a comparison): operator adjustments, redemptions,
campaign grants, and the daily jobs (expiry, pending activation, tier review, birthday gifts,
activity states moving on without an event). Reading and posting go batch by batch, so memory
stays flat whatever the history's length.
"""

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import connection

from core.errors import DomainError
from loyalty.engine.events import EventInput, record_events
from loyalty.engine.reversals import event_reverse
from loyalty.program.program_file import program_load

BATCH = 1_000
READ = 5_000


@dataclass
class Replayed:
    events: int = 0
    reversals: int = 0
    refused: int = 0  # events the engine refused under the draft (an attribute it cannot use)
    reversals_refused: int = 0  # reversals of events the draft credited nothing


class Cancelled(Exception):
    """The operator cancelled the simulation."""


def _fetch(sql: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def history_size(end: datetime) -> int:
    """How many events and reversals a replay up to ``end`` posts."""
    ((events,),) = _fetch("SELECT count(*) FROM public.loyalty_event WHERE occurred_at < %s", [end])
    ((reversals,),) = _fetch(
        "SELECT count(*) FROM public.loyalty_eventreversal r "
        "JOIN public.loyalty_event e ON e.id = r.event_id WHERE e.occurred_at < %s",
        [end],
    )
    return events + reversals


def _timeline(since: datetime | None, end: datetime) -> Iterator[tuple[str, tuple]]:
    """The events that occurred in [since, end) and their reversals, in the order they were
    made, read page by page from the live tables (named with their schema: the connection
    looks at the scratch first)."""
    since = since or datetime.min.replace(tzinfo=end.tzinfo)
    reversals = _fetch(
        "SELECT r.created_at, r.id, r.event_id, r.amount FROM public.loyalty_eventreversal r "
        "JOIN public.loyalty_event e ON e.id = r.event_id "
        "WHERE e.occurred_at >= %s AND e.occurred_at < %s ORDER BY r.created_at, r.id",
        [since, end],
    )
    waiting = iter(reversals)
    reversal = next(waiting, None)
    after = 0
    while True:
        page = _fetch(
            "SELECT e.id, e.received_at, m.external_id, e.action_code, e.occurred_at, "
            "e.attributes FROM public.loyalty_event e "
            "JOIN public.accounts_member m ON m.id = e.member_id "
            "WHERE e.id > %s AND e.occurred_at >= %s AND e.occurred_at < %s "
            "ORDER BY e.id LIMIT %s",
            [after, since, end, READ],
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


def replay(
    *,
    start: datetime,
    end: datetime,
    definition: dict[str, Any] | None,
    progress: Callable[[int], None] = lambda done: None,
    cancelled: Callable[[], bool] = lambda: False,
) -> Replayed:
    """Replay the history up to ``end`` into the scratch the connection points at. With a
    ``definition`` (a program file), in two parts: what occurred before ``start`` under the
    live program — each member's standing at the period's start — then the draft is loaded and
    what occurred in the period is replayed under it. Without one, the whole history in the
    order it was recorded, under the live program."""
    done = Replayed()
    reversed_ids = {
        event_id
        for (event_id,) in _fetch("SELECT DISTINCT event_id FROM public.loyalty_eventreversal", [])
    }
    replayed_as: dict[int, int] = {}  # live event id → scratch event id, for reversed events
    batch: list[tuple[int, EventInput]] = []

    def post() -> None:
        results = record_events(client=None, events=[event for _id, event in batch])
        for (live_id, _event), result in zip(batch, results, strict=True):
            if result.error is not None:
                done.refused += 1
            elif live_id in reversed_ids:
                replayed_as[live_id] = result.result.event_id
        done.events += len(batch)
        batch.clear()
        progress(done.events + done.reversals)
        if cancelled():
            raise Cancelled

    def run(timeline: Iterator[tuple[str, tuple]]) -> None:
        for kind, row in timeline:
            if kind == "reversal":
                if batch:
                    post()
                _reverse(row)
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

    def _reverse(row: tuple) -> None:
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

    if definition is None:
        run(_timeline(None, end))
    else:
        run(_timeline(None, start))
        program_load(data=definition, switch_off_missing=True)
        run(_timeline(start, end))
    return done
