"""Recording events: what members do, turned into growth, points, tiers, badges and the rest.

The entry points (``record_event``, ``record_events``) and what they answer. An event's path:
``loyalty.engine.pipeline`` orders a batch's steps (idempotency, chunks, locks, one unit of
work per chunk, retries); ``loyalty.engine.record`` runs one event's steps under its member's
lock; ``loyalty.engine.evaluate`` applies the action's rules against caps and cooldowns.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from accounts.models import ApiClient
from core.errors import DomainError, InvalidInput
from loyalty.engine.inputs import EventInput
from loyalty.engine.pipeline import record_items
from loyalty.engine.record import Item
from loyalty.program.compiled import CompiledProgram, program_snapshot


@dataclass(frozen=True)
class EventResult:
    event_id: int | None
    outcome: dict[str, Any]
    replayed: bool = False
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "replayed": self.replayed,
            "dry_run": self.dry_run,
            **self.outcome,
        }


# --- Entry points -----------------------------------------------------------------------------


def record_event(
    *, client: ApiClient | None, event: EventInput, dry_run: bool = False
) -> EventResult:
    """Record one event and credit what its rules earn; safe to retry with the same key.

    A retry with the same idempotency key and body returns the stored outcome (``replayed``);
    the same key with another body raises ``IdempotencyConflict``. With ``dry_run`` the same
    evaluation runs and is rolled back: nothing is stored.
    """
    (item,) = record_events(client=client, events=[event], dry_run=dry_run)
    if item.error is not None:
        raise item.error
    return item.result


@dataclass(frozen=True)
class BatchItemResult:
    index: int
    result: EventResult | None = None
    error: DomainError | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            error = {
                "code": self.error.code,
                "message": str(self.error.message),
                "details": self.error.details,
            }
            return {"index": self.index, "ok": False, "error": error}
        return {"index": self.index, "ok": True, "outcome": self.result.as_dict()}


def record_events(
    *,
    client: ApiClient | None,
    events: Sequence[EventInput | DomainError],
    dry_run: bool = False,
    chunk_events: int | None = None,
) -> list[BatchItemResult]:
    """Record a batch, each item judged on its own: one bad item does not sink the others,
    and every item's answer is what recording it alone would have given.

    Items are processed in member order and the results come back in the order posted. An item
    given as a ``DomainError`` (it failed validation) is reported as such. The items go in
    transactions of about ``CHUNK_EVENTS`` events, a member's events all in one: each locks its
    members at once, in primary-key order, reads the rows the flow touches once and writes them
    in bulk (``unit_of_work``). Locks are held for a chunk, not the whole batch, so concurrent
    batches sharing a member wait for one chunk of each other; a batch cut short (a crash, a
    non-domain error) is finished by posting it again, its recorded items answering as replays.
    ``chunk_events`` sets another chunk size (a replay, which no request waits on).
    """
    errors: dict[int, DomainError] = {}
    items: list[Item] = []
    program = program_snapshot()
    for index, event in enumerate(events):
        if isinstance(event, DomainError):
            errors[index] = event
        elif refused := _refused_attribute(program, event):
            errors[index] = refused
        else:
            items.append(Item(index=index, event=event, request_hash=event.request_hash()))
    found = dict(errors)
    record_items(client, items, found, dry_run, chunk_events)
    recorded = {
        item.index: EventResult(
            event_id=None if dry_run else item.stored.pk,
            outcome=item.outcome,
            replayed=item.replayed,
            dry_run=dry_run,
        )
        for item in items
        if item.index not in found
    }
    return [
        BatchItemResult(index=index, error=found.get(index), result=recorded.get(index))
        for index in range(len(events))
    ]


class InvalidAttribute(InvalidInput):
    code = "invalid_attribute"


def _refused_attribute(program: CompiledProgram, event: EventInput) -> InvalidAttribute | None:
    """An event whose per-unit attribute (an amount) no rule of its action could use is refused
    before anything is read, locked or stored: it leaves nothing behind (no member created), and
    no arithmetic ever runs on an absurd number."""
    checked = set()
    for rule in program.rules_by_action.get(event.action, ()):
        if rule.unit_attribute in checked:
            continue  # several rules of an action read the same amount
        checked.add(rule.unit_attribute)
        if rule.refuses_attributes(event.attributes):
            return InvalidAttribute(
                rule.unit_problem,
                details={"attribute": rule.unit_attribute},
            )
    return None
