"""Tier changes an operator or the calendar asks for: the periodic review and the operator's
lock. Each runs in its own transaction per member and awards the tier badges the move makes
due, as an event's upgrade does."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from accounts.models import Member
from loyalty.gamification.badges import badges_on_tier_change
from loyalty.ledger.session import member_session
from loyalty.models import MemberStanding, Tier, TierChange
from loyalty.persistence.queries import member_ids_in_chunks
from loyalty.program.compiled import compiled_program
from loyalty.tiers.moves import GrowthWindows, TierMove, move_tier, tier_review_member


@dataclass
class ReviewReport:
    reviewed: int = 0
    downgraded: int = 0
    upgraded: int = 0
    grace_started: int = 0


def review_tiers(*, at: datetime | None = None, chunk_size: int = 500) -> ReviewReport:
    """The periodic tier review over every member holding a tier, one transaction per member,
    streaming members in primary-key chunks. Safe to re-run: a second run the same day
    changes nothing."""
    at = at or timezone.now()
    program = compiled_program()
    report = ReviewReport()
    holding_a_tier = MemberStanding.objects.filter(tier__isnull=False)
    for ids in member_ids_in_chunks(holding_a_tier, chunk_size):
        for member_id in ids:
            with member_session(member_id) as session:
                standing, work = session.standing, session.work
                had_grace = standing.grace_until is not None
                move = tier_review_member(work=work, standing=standing, program=program, at=at)
                if move and move.reason != TierChange.Reason.REVIEW:
                    badges_on_tier_change(work=work, standing=standing, program=program)
            report.reviewed += 1
            if move and move.reason == TierChange.Reason.REVIEW:
                report.downgraded += 1
            elif move:
                report.upgraded += 1
            elif standing.grace_until and not had_grace:
                report.grace_started += 1
    return report


def tier_lock(
    *, member: Member, tier: Tier | None, operator=None, note: str = ""
) -> TierMove | None:
    """Lock the member at ``tier`` (None unlocks): the review never lowers them below it. A
    member below the locked tier is raised to it at once."""
    program = compiled_program()
    with member_session(member.pk) as session:
        standing, work = session.standing, session.work
        standing.locked_tier_id = tier.pk if tier else None
        work.tier_moved(standing)  # the flush writes the standing's tier columns
        locked = program.tier(standing.locked_tier_id)
        current = program.tier(standing.tier_id)
        if locked and (current is None or current.position < locked.position):
            move = move_tier(
                work=work,
                standing=standing,
                program=program,
                to_tier=locked,
                reason=TierChange.Reason.LOCK,
                qualifying=GrowthWindows(work, standing, timezone.now()).for_tier(locked),
                at=timezone.now(),
                operator=operator,
                note=note,
            )
            badges_on_tier_change(work=work, standing=standing, program=program)
            return move
        TierChange.objects.create(
            member_id=member.pk,
            from_tier_id=standing.tier_id,
            to_tier_id=standing.tier_id,
            reason=TierChange.Reason.LOCK if tier else TierChange.Reason.UNLOCK,
            operator=operator,
            note=note or (f"locked at {tier.code}" if tier else "unlocked"),
        )
        return None
