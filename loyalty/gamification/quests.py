"""Quests: daily, weekly and one-time goals of the form "do action X N times", with a bonus on
completion. The caller holds the member's standing lock."""

from collections.abc import Callable, Collection
from datetime import date, datetime, timedelta

from django.utils import timezone

from loyalty.gamification.bonus import grant_bonus
from loyalty.models import (
    MemberStanding,
    Quest,
    QuestProgress,
    SourceType,
)
from loyalty.outbox import webhook_emit
from loyalty.periods import LIFETIME_START, local_date, period_start
from loyalty.persistence.queries import quest_progress_of
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.program.compiled import CompiledProgram

QUEST_PERIODS = {Quest.Scope.DAILY: "day", Quest.Scope.WEEKLY: "week"}


def quest_period_start(quest: Quest, at: datetime, returned_on: date | None = None) -> date | None:
    """The first day of the quest's period holding ``at``. A quest after a return starts on
    the day the member came back (``returned_on``) and is open ``window_days``: None outside
    that window (the quest is not open for the member)."""
    if quest.scope == Quest.Scope.RETURN:
        if returned_on is None or not (
            returned_on <= local_date(at) < returned_on + timedelta(days=quest.window_days)
        ):
            return None
        return returned_on
    period = QUEST_PERIODS.get(quest.scope)
    return period_start(period, at) if period else LIFETIME_START


def quests_progress(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    action_id: int,
    occurred_at: datetime,
    program: CompiledProgram,
    returned_on: Callable[[], date | None] = lambda: None,
    segments: Callable[[], Collection[str]] = tuple,
) -> list[Quest]:
    """Count the event towards every active quest with a step on its action, in the quest's
    period holding ``occurred_at``; give the bonus of the quests this completes, and return
    them (their reward badge is the caller's to award). ``returned_on`` tells, when a quest
    after a return asks, the day the member last came back; ``segments``, when a quest kept
    for a segment asks, the codes of the segments the member is in."""
    completed = []
    for quest in program.quests_by_action.get(action_id, ()):
        if quest.segment_id is not None and quest.segment.code not in segments():
            continue
        back = returned_on() if quest.scope == Quest.Scope.RETURN else None
        start = quest_period_start(quest, occurred_at, back)
        if start is None:
            continue
        progress = _quest_progress(work, standing.pk, quest, start)
        if progress.completed_at is not None:
            continue
        steps = list(quest.steps.all())
        counts = dict(progress.step_counts)
        for step in steps:
            if step.action_id == action_id:
                counts[str(step.pk)] = min(counts.get(str(step.pk), 0) + 1, step.count)
        progress.step_counts = counts
        if not all(counts.get(str(step.pk), 0) >= step.count for step in steps):
            work.changed(progress)
        else:
            progress.completed_at = timezone.now()
            # Written at once: its id names the bonus, and badges count completed quests.
            work.save_now(progress)
            grant_bonus(
                work,
                standing,
                SourceType.QUEST,
                progress,
                quest.code,
                f"Quest {quest.code}",
                quest.reward_growth,
                quest.reward_points,
                at=occurred_at,
            )
            completed.append(quest)
            webhook_emit(
                work=work,
                type="quest.completed",
                member_id=standing.pk,
                data={
                    "member": work.external_id(standing.pk),
                    "quest": quest.code,
                    "period_start": progress.period_start.isoformat(),
                    "reward": {"points": quest.reward_points, "growth": quest.reward_growth},
                },
            )
    return completed


def _quest_progress(work: UnitOfWork, member_id: int, quest: Quest, start: date) -> QuestProgress:
    return work.row(
        QuestProgress,
        (member_id, quest.pk, start),
        index=lambda p: (p.member_id, p.quest_id, p.period_start),
        query=lambda ids: quest_progress_of(ids, work.period_floor),
        new=lambda: QuestProgress(member_id=member_id, quest=quest, period_start=start),
    )
