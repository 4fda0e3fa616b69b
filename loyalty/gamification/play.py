"""The gamification step of an event (and of its full reversal), in order: the action's tally,
streaks, quests (their reward badges), badges, and the tier a bonus may lift."""

from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Any

from django.utils import timezone

from loyalty.gamification.badges import badge_award, badges_evaluate, badges_revoke_unearned
from loyalty.gamification.criteria import Touched
from loyalty.gamification.quests import quests_progress
from loyalty.gamification.tallies import streak_touch, tally_add
from loyalty.models import (
    BadgeAward,
    MemberStanding,
)
from loyalty.periods import local_date
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.program.compiled import CompiledProgram
from loyalty.tiers.moves import TierMove, tier_upgrade_if_qualified


def on_event(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    action_id: int,
    occurred_at: datetime,
    growth: int,
    tier_changed: bool,
    program: CompiledProgram,
    returned_on: Callable[[], date | None] = lambda: None,
    segments: Callable[[], Collection[str]] = tuple,
) -> tuple[dict[str, Any], TierMove | None]:
    """Tally, streaks, quests and badges for one recorded event. Bonuses may lift the tier:
    the move is returned beside what was played."""
    tally_add(work=work, member_id=standing.pk, action_id=action_id, delta=1)
    touched = Touched(actions={action_id}, growth=growth > 0, tier=tier_changed)
    tier = program.tier(standing.tier_id)
    freezes = int(tier.privilege_param("streak_freezes", "count") or 0) if tier else 0
    streaks = []
    for streak in program.streaks_by_action.get(action_id, ()):
        state = streak_touch(
            work=work,
            member_id=standing.pk,
            streak=streak,
            day=local_date(occurred_at),
            freezes_per_month=freezes,
        )
        touched.streaks.add(streak.pk)
        streaks.append({"streak": streak.code, "current": state.current, "longest": state.longest})
    growth_before = standing.growth
    quests = quests_progress(
        work=work,
        standing=standing,
        action_id=action_id,
        occurred_at=occurred_at,
        program=program,
        returned_on=returned_on,
        segments=segments,
    )
    awards = [
        badge_award(work=work, standing=standing, badge=quest.reward_badge, at=occurred_at)
        for quest in quests
        if quest.reward_badge_id
    ]
    touched.quests = bool(quests)
    awards += badges_evaluate(
        work=work, standing=standing, program=program, touched=touched, at=occurred_at
    )
    tier_move = None
    if standing.growth > growth_before:
        tier_move = tier_upgrade_if_qualified(
            work=work, standing=standing, program=program, at=timezone.now()
        )
        if tier_move:
            awards += badges_evaluate(
                work=work,
                standing=standing,
                program=program,
                touched=Touched(tier=True, growth=True),
                at=occurred_at,
            )
    played = {
        "badges_awarded": [
            {"badge": a.badge.code, "level": a.badge.level, "sequence": a.sequence} for a in awards
        ],
        "quests_completed": [q.code for q in quests],
        "streaks": streaks,
    }
    return played, tier_move


def on_reversal(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    action_id: int,
    occurred_at: datetime,
    program: CompiledProgram,
) -> list[BadgeAward]:
    """A full reversal: the occurrence no longer counts for tallies (badges may be revoked)."""
    tally_add(work=work, member_id=standing.pk, action_id=action_id, delta=-1)
    touched = Touched(actions={action_id}, growth=True)
    return badges_revoke_unearned(
        work=work, standing=standing, program=program, touched=touched, reason="reversal"
    )
