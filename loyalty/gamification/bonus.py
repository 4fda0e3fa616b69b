"""Bonuses: growth and points given for something a member earned (a badge, a quest, a gift),
named by it in the ledger and listed in the event's answer."""

from datetime import datetime

from django.db.models import Model

from loyalty.ledger.entries import Movement, ledger_post
from loyalty.ledger.points import points_credit_locked
from loyalty.models import (
    Currency,
    EntryKind,
    MemberStanding,
)
from loyalty.persistence.unit_of_work import UnitOfWork


def grant_bonus(
    work: UnitOfWork,
    standing: MemberStanding,
    source_type: str,
    source: Model,
    code: str,
    reason: str,
    growth: int,
    points: int,
    at: datetime | None = None,
) -> None:
    """Growth and points given for ``source`` (a grant, an award, a completed quest): its id
    names the entries; a row the unit of work has not written yet gets it at the flush. The
    bonus is also listed for the event's answer (``code`` names it there).
    ``at``: when the bonus counts (the time of the event that set it off; default now)."""
    named = {"source_id": str(source.pk)} if source.pk else {"source": source}
    if growth or points:
        work.bonuses.append(
            {"source": str(source_type), "code": code, "growth": growth, "points": points}
        )
    if growth:
        ledger_post(
            work=work,
            standing=standing,
            movements=[
                Movement(
                    currency=Currency.GROWTH,
                    kind=EntryKind.BONUS,
                    amount=growth,
                    source_type=source_type,
                    reason=reason,
                    effective_at=at,
                    **named,
                )
            ],
        )
    if points:
        points_credit_locked(
            work=work,
            standing=standing,
            amount=points,
            kind=EntryKind.BONUS,
            source_type=source_type,
            reason=reason,
            effective_at=at,
            **named,
        )
