"""Posting to the ledger: the only way balances change.

``ledger_post`` writes append-only entries and moves the cached buckets on the member's standing
by the same amounts, in one statement each, so the cache always equals the ledger's sums.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Model
from django.utils import timezone

from core import sql
from core.errors import InvariantBroken
from loyalty.models import Currency, EntryKind, Event, LedgerEntry, MemberStanding
from loyalty.models.standing import BUCKETS
from loyalty.persistence.unit_of_work import UnitOfWork

# How each kind of points entry moves the lifetime buckets (besides the spendable balance).
EARNED_KINDS = {EntryKind.EARN, EntryKind.BONUS, EntryKind.REVERSE, EntryKind.ACTIVATE}
SPENT_KINDS = {EntryKind.SPEND, EntryKind.REFUND}
EXPIRED_KINDS = {EntryKind.EXPIRE}


@dataclass(frozen=True)
class Movement:
    currency: str
    kind: str
    amount: int
    source_type: str
    source_id: str = ""
    pending: bool = False
    event_id: int | None = None
    event: Event | None = None  # an event not written yet
    source: Model | None = None  # a row not written yet (its id becomes the source id)
    rule_version_id: int | None = None
    operator_id: int | None = None
    reason: str = ""
    effective_at: datetime | None = None


def bucket_deltas(entries: Iterable[tuple[str, str, bool, int]]) -> dict[str, int]:
    """What ``(currency, kind, pending, amount)`` entries add to each cached bucket of a
    standing. The single definition shared by posting and by ``verify_ledger``.

    Points on hold count only in ``points_pending``; they count as earned when activated.
    """
    deltas = dict.fromkeys(BUCKETS, 0)
    for currency, kind, pending, amount in entries:
        if currency == Currency.GROWTH:
            deltas["growth"] += amount
            continue
        if pending:
            deltas["points_pending"] += amount
            continue
        deltas["points"] += amount
        if kind in EARNED_KINDS or (kind == EntryKind.ADJUST and amount > 0):
            deltas["points_earned"] += amount
        elif kind in SPENT_KINDS or kind == EntryKind.ADJUST:
            deltas["points_spent"] -= amount
        elif kind in EXPIRED_KINDS:
            deltas["points_expired"] -= amount
    return deltas


def ledger_post(
    *, work: UnitOfWork, standing: MemberStanding, movements: list[Movement]
) -> list[LedgerEntry]:
    """Post the movements and move the standing's buckets alike (the growth and points
    leaderboards count the posted entries before the flush). The in-memory ``standing``'s buckets move at once, so the caller can
    read the new balances; ``work``'s flush writes the entries and the balances. The standing
    must be one ``work`` holds (locked).
    """
    movements = [m for m in movements if m.amount]
    now = timezone.now()
    entries = [
        sql.new_row(
            LedgerEntry,
            member_id=standing.pk,
            currency=m.currency,
            kind=m.kind,
            amount=m.amount,
            pending=m.pending,
            source_type=m.source_type,
            source_id=m.source_id,
            rule_version_id=m.rule_version_id,
            operator_id=m.operator_id,
            reason=m.reason,
            effective_at=m.effective_at or now,
            **({"event": m.event} if m.event is not None else {"event_id": m.event_id}),
        )
        for m in movements
    ]
    deltas = {
        name: delta
        for name, delta in bucket_deltas(
            (m.currency, m.kind, m.pending, m.amount) for m in movements
        ).items()
        if delta
    }
    # Flushing writes the unit of work's own standing objects: the caller must be using them.
    if work.standings.get(standing.pk) is not standing:
        raise InvariantBroken("Posted to a standing the unit of work does not hold.")
    work.post(entries, sources=[m.source for m in movements])
    for name, delta in deltas.items():
        setattr(standing, name, getattr(standing, name) + delta)
    return entries
