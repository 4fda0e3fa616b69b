"""Points over time: spending, operator adjustments, activation of pending points, expiry.

The ``*_locked`` primitives need the caller to hold the member's standing lock and to be in
its transaction; the other services open their own transaction and are safe to retry.
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Model, Sum
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Member
from core.errors import BusinessRuleViolation, InvalidInput
from loyalty.ledger.entries import Movement, ledger_post
from loyalty.ledger.lots import lots_activated, lots_open, lots_take
from loyalty.ledger.session import member_session
from loyalty.models import (
    Currency,
    EntryKind,
    LedgerEntry,
    MemberStanding,
    PointLot,
    SourceType,
)
from loyalty.outbox import webhook_emit
from loyalty.persistence.queries import member_ids_in_chunks
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.program.compiled import program_snapshot


class InsufficientPoints(BusinessRuleViolation):
    code = "insufficient_points"
    message = _("The member does not have enough spendable points.")


# --- Primitives (caller holds the lock) -------------------------------------------------------


def points_credit_locked(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    amount: int,
    kind: str,
    source_type: str,
    source_id: str = "",
    source: Model | None = None,
    reason: str = "",
    operator_id: int | None = None,
    expires_at: datetime | None = None,
    use_default_expiry: bool = True,
    effective_at: datetime | None = None,
) -> LedgerEntry:
    """Credit spendable points and open their lot (with the program's default expiry unless
    ``expires_at`` is given or ``use_default_expiry`` is off). ``source``: a row the unit of
    work writes later, whose id becomes the source id. ``effective_at`` (default now): when the
    credit counts, from which the default expiry runs."""
    now = effective_at or timezone.now()
    (entry,) = ledger_post(
        work=work,
        standing=standing,
        movements=[
            Movement(
                currency=Currency.POINTS,
                kind=kind,
                amount=amount,
                source_type=source_type,
                source_id=source_id,
                source=source,
                reason=reason,
                operator_id=operator_id,
                effective_at=now,
            )
        ],
    )
    if expires_at is None and use_default_expiry:
        # The program the operation read at its start (compiled with the lock).
        program = program_snapshot()
        expires_at = program.default_expiry.expires_at(now)
    lots_open(work=work, standing=standing, credits=[(entry, expires_at, None)])
    return entry


def points_debit_locked(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    amount: int,
    kind: str,
    source_type: str,
    source_id: str = "",
    reason: str = "",
    operator_id: int | None = None,
) -> LedgerEntry:
    """Take spendable points, from the lots closest to expiry first; refuses to go below zero."""
    if amount <= 0:
        raise InvalidInput("The amount must be positive.", code="invalid_amount")
    # The caller holds the standing's lock (as the name says), so its balance is current.
    if standing.points < amount:
        raise InsufficientPoints(details={"balance": standing.points, "required": amount})
    (entry,) = ledger_post(
        work=work,
        standing=standing,
        movements=[
            Movement(
                currency=Currency.POINTS,
                kind=kind,
                amount=-amount,
                source_type=source_type,
                source_id=source_id,
                reason=reason,
                operator_id=operator_id,
            )
        ],
    )
    lots_take(work=work, member_id=standing.pk, amount=amount, entry=entry)
    return entry


# --- Periodic jobs ----------------------------------------------------------------------------


@dataclass
class LotJobReport:
    members: int = 0
    lots: int = 0
    points: int = 0


def activate_pending_points(*, at: datetime | None = None, chunk_size: int = 500) -> LotJobReport:
    """Make spendable every pending lot whose hold has ended. One transaction per member; a
    rerun finds nothing left to do."""
    at = at or timezone.now()
    due = PointLot.objects.filter(pending=True, activates_at__lte=at, remaining__gt=0)
    report = LotJobReport()
    for ids in member_ids_in_chunks(due, chunk_size):
        for member_id in ids:
            with member_session(member_id) as session:
                standing, work = session.standing, session.work
                lots = list(due.filter(member_id=member_id).order_by("id"))
                if not lots:
                    continue
                movements = []
                for lot in lots:
                    common = dict(
                        currency=Currency.POINTS,
                        kind=EntryKind.ACTIVATE,
                        source_type=SourceType.HOLD,
                        source_id=str(lot.pk),
                        event_id=lot.event_id,
                        effective_at=at,
                    )
                    movements += [
                        Movement(amount=-lot.remaining, pending=True, **common),
                        Movement(amount=lot.remaining, **common),
                    ]
                ledger_post(work=work, standing=standing, movements=movements)
                lots_activated(work=work, standing=standing, lots=lots)
            report.members += 1
            report.lots += len(lots)
            report.points += sum(lot.remaining for lot in lots)
    return report


def expire_points(*, at: datetime | None = None, chunk_size: int = 500) -> LotJobReport:
    """Write an expiry entry for what is left of each lapsed lot. One transaction per member;
    a rerun finds nothing left to do."""
    at = at or timezone.now()
    lapsed = PointLot.objects.filter(pending=False, remaining__gt=0, expires_at__lte=at)
    report = LotJobReport()
    for ids in member_ids_in_chunks(lapsed, chunk_size):
        for member_id in ids:
            with member_session(member_id) as session:
                standing, work = session.standing, session.work
                lots = list(lapsed.filter(member_id=member_id).order_by("expires_at", "id"))
                for lot in lots:
                    (entry,) = ledger_post(
                        work=work,
                        standing=standing,
                        movements=[
                            Movement(
                                currency=Currency.POINTS,
                                kind=EntryKind.EXPIRE,
                                amount=-lot.remaining,
                                source_type=SourceType.EXPIRY,
                                source_id=str(lot.pk),
                                effective_at=lot.expires_at,
                            )
                        ],
                    )
                    lots_take(
                        work=work,
                        member_id=member_id,
                        amount=lot.remaining,
                        entry=entry,
                        lot_id=lot.pk,
                    )
                if lots:
                    webhook_emit(
                        work=work,
                        type="points.expired",
                        member_id=member_id,
                        data={
                            "member": work.external_id(member_id),
                            "points": sum(lot.remaining for lot in lots),
                            "balance": standing.points,
                        },
                    )
            report.members += 1
            report.lots += len(lots)
            report.points += sum(lot.remaining for lot in lots)
    return report


def points_expiring(*, member: Member) -> list[dict]:
    """What of the member's spendable points expires when: ``[{"expires_at", "points"}]``."""
    rows = (
        PointLot.objects.filter(
            member=member, pending=False, remaining__gt=0, expires_at__isnull=False
        )
        .values("expires_at")
        .annotate(points=Sum("remaining"))
        .order_by("expires_at")
    )
    return [{"expires_at": row["expires_at"], "points": row["points"]} for row in rows]
