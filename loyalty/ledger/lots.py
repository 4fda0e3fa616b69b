"""Point lots: credits open them, debits take from them, closest to expiry first.

Every function here has one precondition: the caller holds the member's standing lock.
Invariants (``verify_ledger`` checks them): a lot's ``remaining`` is its amount less its
movements; a member's spendable lots add up to ``max(points, 0)`` and pending lots to
``points_pending``.

New spendable points first pay back what the member owes: a balance below zero, then the open
shortfalls of reversals (points a refund could not take back because they were spent).
"""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import F

from core import sql
from loyalty.ledger.entries import Movement, ledger_post
from loyalty.models import (
    Currency,
    EntryKind,
    EventReversal,
    LedgerEntry,
    LotMovement,
    MemberStanding,
    PointLot,
    SourceType,
)
from loyalty.persistence import bulk
from loyalty.persistence.queries import open_lots
from loyalty.persistence.unit_of_work import UnitOfWork

TAKE_BATCH = 200


def lots_open(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    credits: Iterable[tuple[LedgerEntry, datetime | None, datetime | None]],
) -> list[PointLot]:
    """Open a lot for each positive points credit ``(entry, expires_at, activates_at)``.

    Posted after ``ledger_post`` moved the balance: if the member was below zero (a reversal
    of spent points), the new spendable points first pay that back.
    """
    lots = [
        sql.new_row(
            PointLot,
            member_id=standing.pk,
            entry=entry,
            # An entry of a batch's event holds the event object (not written yet).
            **({"event": entry.event} if entry.event_id is None else {"event_id": entry.event_id}),
            amount=entry.amount,
            remaining=entry.amount,
            pending=entry.pending,
            activates_at=activates_at if entry.pending else None,
            expires_at=expires_at,
        )
        for entry, expires_at, activates_at in credits
        if entry.amount > 0
    ]
    work.lots += lots
    spendable = [lot for lot in lots if not lot.pending]
    if spendable:
        _repay_owed(work, standing, spendable)
    return lots


def lots_activated(*, work: UnitOfWork, standing: MemberStanding, lots: list[PointLot]) -> None:
    """Pending lots became spendable (their entries are posted by the caller)."""
    PointLot.objects.filter(pk__in=[lot.pk for lot in lots]).update(
        pending=False, activates_at=None
    )
    for lot in lots:
        lot.pending = False
    _repay_owed(work, standing, lots)


def _repay_owed(work: UnitOfWork, standing: MemberStanding, new_lots: list[PointLot]) -> None:
    """New spendable lots (their credit already in the balance) pay back a balance below zero,
    then open shortfalls."""
    credited = sum(lot.remaining for lot in new_lots)
    _take_from(work, new_lots, min(credited, max(credited - standing.points, 0)), entry=None)
    if standing.points_owed > 0 and standing.points > 0:
        _repay_shortfalls(work, standing, new_lots)


def _repay_shortfalls(work: UnitOfWork, standing: MemberStanding, new_lots: list[PointLot]) -> None:
    """Repay the member's open shortfalls, oldest first, from the new lots, never taking the
    balance below zero. Each repayment is a reversal entry of the event whose reversal fell
    short, dated at that event (where the reversal itself counts), so leaderboards drop the
    points clawed back late exactly as if the reversal had taken them at once."""
    left = min(sum(lot.remaining for lot in new_lots), standing.points, standing.points_owed)
    debts = (
        EventReversal.objects.filter(event__member_id=standing.pk, shortfall_open__gt=0)
        .order_by("id")
        .values_list("pk", "event_id", "event__occurred_at", "shortfall_open")
    )
    for reversal_id, event_id, occurred_at, open_amount in debts:
        if left <= 0:
            break
        take = min(left, open_amount)
        (entry,) = ledger_post(
            work=work,
            standing=standing,
            movements=[
                Movement(
                    currency=Currency.POINTS,
                    kind=EntryKind.REVERSE,
                    amount=-take,
                    source_type=SourceType.SHORTFALL,
                    source_id=str(reversal_id),
                    event_id=event_id,
                    reason=f"Repays the shortfall of reversal {reversal_id}",
                    effective_at=occurred_at,
                )
            ],
        )
        _take_from(work, new_lots, take, entry=entry)
        EventReversal.objects.filter(pk=reversal_id).update(
            shortfall_open=F("shortfall_open") - take
        )
        standing.points_owed -= take  # the flush writes the standing
        left -= take


def _take_from(
    work: UnitOfWork, lots: list[PointLot], amount: int, *, entry: LedgerEntry | None
) -> None:
    """Take ``amount`` from the given lots in order (new ones, or ones just activated),
    recording each take against ``entry``, or against the lot's own credit (repaying a balance
    below zero). The takes are written with the flush; a lot already written has its remaining
    points updated at once, so that later reads in the transaction see them."""
    for lot in lots:
        if amount <= 0:
            break
        take = min(amount, lot.remaining)
        if take <= 0:
            continue
        taker = entry if entry is not None else lot.entry
        work.lot_movements.append(LotMovement(lot=lot, entry=taker, amount=take))
        if lot.pk is not None:
            work.written_later()  # a take of lots_take's first: it sets what this subtracts from
            PointLot.objects.filter(pk=lot.pk).update(remaining=F("remaining") - take)
        lot.remaining -= take
        amount -= take


def lots_take(
    *,
    work: UnitOfWork,
    member_id: int,
    amount: int,
    entry: LedgerEntry,
    pending: bool = False,
    event_id: int | None = None,
    lot_id: int | None = None,
) -> int:
    """Take up to ``amount`` from the member's open lots (spendable, or pending ones), those
    closest to expiry first (never-expiring last, then oldest first), optionally only the
    lots of one event or one lot. Records each take against ``entry``; returns the points taken."""
    taken = 0
    while taken < amount:
        work.written_later()  # earlier takes' remaining points, before reading the lots again
        # A lot holds at least one point: never more lots than points are left to take.
        batch = open_lots(
            member_id,
            pending=pending,
            event_id=event_id,
            lot_id=lot_id,
            limit=min(TAKE_BATCH, amount - taken),
        )
        if not batch:
            break
        movements = []
        for lot in batch:
            take = min(amount - taken, lot.remaining)
            if take <= 0:
                break
            lot.remaining -= take
            taken += take
            movements.append(LotMovement(lot=lot, entry=entry, amount=take))
        # The takes go with the flush (their entry is written then), and so do the lots'
        # remaining points, unless the lots are read again first.
        work.lot_movements += movements
        work.write_later(bulk.columns_write(PointLot, [m.lot for m in movements], ["remaining"]))
    return taken
