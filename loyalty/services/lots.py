"""Point lots: credits open them, debits take from them, closest to expiry first.

Every function here has one precondition: the caller holds the member's standing lock.
Invariants (``verify_ledger`` checks them): a lot's ``remaining`` is its amount less its
movements; a member's spendable lots add up to ``max(points, 0)`` and pending lots to
``points_pending``.
"""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import F

from accounts import sql
from loyalty.models import LedgerEntry, LotMovement, MemberStanding, PointLot
from loyalty.services import unit_of_work

TAKE_BATCH = 200


def lots_open(
    *,
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
    work = unit_of_work.current()
    if work is not None:
        work.lots += lots
    else:
        PointLot.objects.bulk_create(lots)
    spendable = [lot for lot in lots if not lot.pending]
    if spendable:
        _repay_negative_balance(standing, spendable)
    return lots


def lots_activated(*, standing: MemberStanding, lots: list[PointLot]) -> None:
    """Pending lots became spendable (their entries are posted by the caller)."""
    PointLot.objects.filter(pk__in=[lot.pk for lot in lots]).update(
        pending=False, activates_at=None
    )
    for lot in lots:
        lot.pending = False
    _repay_negative_balance(standing, lots)


def _repay_negative_balance(standing: MemberStanding, new_lots: list[PointLot]) -> None:
    credited = sum(lot.remaining for lot in new_lots)
    owed = min(credited, max(credited - standing.points, 0))
    work = unit_of_work.current()
    for lot in new_lots:
        if owed <= 0:
            break
        take = min(owed, lot.remaining)
        if work is not None and lot.pk is None:  # the lot is written with the batch
            work.lot_movements.append(LotMovement(lot=lot, entry=lot.entry, amount=take))
        else:
            LotMovement.objects.create(lot=lot, entry_id=lot.entry_id, amount=take)
            PointLot.objects.filter(pk=lot.pk).update(remaining=F("remaining") - take)
        lot.remaining -= take
        owed -= take


def lots_take(
    *,
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
    where, params = "t.member_id = %s AND t.pending = %s AND t.remaining > 0", [member_id, pending]
    if event_id is not None:
        where, params = f"{where} AND t.event_id = %s", [*params, event_id]
    if lot_id is not None:
        where, params = f"{where} AND t.id = %s", [*params, lot_id]
    where += " ORDER BY t.expires_at ASC NULLS LAST, t.id LIMIT %s"
    taken = 0
    while taken < amount:
        # A lot holds at least one point: never more lots than points are left to take.
        batch = sql.select(PointLot, where, [*params, min(TAKE_BATCH, amount - taken)])
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
        unit_of_work.insert(
            LotMovement,
            movements,
            along=unit_of_work.columns_write(PointLot, [m.lot for m in movements], ["remaining"]),
        )
    return taken
