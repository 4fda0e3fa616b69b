"""Streaks, badges and quests, evaluated in the event flow for what the event touches.

Every function here needs the caller to hold the member's standing lock.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Model, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from core import sql
from loyalty.ledger.entries import Movement, ledger_post
from loyalty.ledger.points import points_credit_locked
from loyalty.models import (
    ActionTally,
    Badge,
    BadgeAward,
    Currency,
    EntryKind,
    MemberStanding,
    MemberStreak,
    Quest,
    QuestProgress,
    SourceType,
    Streak,
)
from loyalty.outbox import webhook_emit
from loyalty.periods import LIFETIME_START, local_date, period_start
from loyalty.persistence import unit_of_work
from loyalty.persistence.locks import lock_standing
from loyalty.persistence.unit_of_work import UnitOfWork, member_external_id
from loyalty.program.compiled import CompiledProgram, compiled_program
from loyalty.tiers.moves import TierMove, tier_upgrade_if_qualified

QUEST_PERIODS = {Quest.Scope.DAILY: "day", Quest.Scope.WEEKLY: "week"}


@dataclass
class Touched:
    """What an event changed, so only the badges it could affect are evaluated."""

    actions: set[int] = field(default_factory=set)
    streaks: set[int] = field(default_factory=set)
    growth: bool = False
    tier: bool = False
    quests: bool = False


# --- Tallies and streaks ----------------------------------------------------------------------


def tally_add(*, member_id: int, action_id: int, delta: int) -> None:
    work = unit_of_work.current()
    if work is not None:
        tally = _tally(work, member_id, action_id)
        tally.count = max(tally.count + delta, 0)
        work.changed(tally)
        return
    rows = ActionTally.objects.filter(member_id=member_id, action_id=action_id)
    if not rows.update(count=Greatest(F("count") + delta, Value(0))) and delta > 0:
        ActionTally.objects.create(member_id=member_id, action_id=action_id, count=delta)


def _tally(work: UnitOfWork, member_id: int, action_id: int) -> ActionTally:
    return work.row(
        ActionTally,
        (member_id, action_id),
        index=lambda t: (t.member_id, t.action_id),
        query=lambda ids: sql.select(ActionTally, *sql.any_of("member_id", ids)),
        new=lambda: ActionTally(member_id=member_id, action_id=action_id, count=0),
    )


def _streak_state(member_id: int, streak_id: int) -> MemberStreak:
    work = unit_of_work.current()
    if work is None:
        return MemberStreak.objects.get_or_create(member_id=member_id, streak_id=streak_id)[0]
    return work.row(
        MemberStreak,
        (member_id, streak_id),
        index=lambda s: (s.member_id, s.streak_id),
        query=lambda ids: MemberStreak.objects.filter(sql.AnyOf("member_id", ids)),
        new=lambda: MemberStreak(member_id=member_id, streak_id=streak_id),
    )


def streak_touch(
    *, member_id: int, streak: Streak, day: date, freezes_per_month: int
) -> MemberStreak:
    """Count the local ``day`` for the streak: the next day extends it; a gap is bridged by the
    member's streak freezes for that month (a tier privilege) if enough are left, else the
    streak starts again at 1. A day already counted, or an earlier one, changes nothing."""
    state = _streak_state(member_id, streak.pk)
    if state.last_day is not None and day <= state.last_day:
        return state
    month = day.replace(day=1)
    if state.freezes_month != month:
        state.freezes_month, state.freezes_used = month, 0
    if state.last_day is None:
        state.current = 1
    else:
        missed = (day - state.last_day).days - 1
        if missed == 0:
            state.current += 1
        elif missed <= freezes_per_month - state.freezes_used:
            state.freezes_used += missed
            state.current += 1
        else:
            state.current = 1
    state.last_day = day
    state.longest = max(state.longest, state.current)
    unit_of_work.save(state)
    return state


# --- Badges -----------------------------------------------------------------------------------


def badge_progress(
    badge: Badge, *, member_id: int, standing: MemberStanding, program: CompiledProgram
) -> int:
    """The member's progress towards the badge, in the units of its threshold."""
    kind = badge.criterion
    work = unit_of_work.current()
    if work is not None and kind == Badge.Criterion.ACTION_COUNT:
        return _tally(work, member_id, badge.action_id).count
    if work is not None and kind == Badge.Criterion.STREAK_LENGTH:
        return _streak_state(member_id, badge.streak_id).longest
    if kind == Badge.Criterion.ACTION_COUNT:
        return (
            ActionTally.objects.filter(member_id=member_id, action_id=badge.action_id)
            .values_list("count", flat=True)
            .first()
            or 0
        )
    if kind == Badge.Criterion.STREAK_LENGTH:
        return (
            MemberStreak.objects.filter(member_id=member_id, streak_id=badge.streak_id)
            .values_list("longest", flat=True)
            .first()
            or 0
        )
    if kind == Badge.Criterion.GROWTH_REACHED:
        return standing.growth
    if kind == Badge.Criterion.TIER_REACHED:
        tier, needed = program.tier(standing.tier_id), program.tier(badge.tier_id)
        return int(bool(tier and needed and tier.position >= needed.position))
    if kind == Badge.Criterion.QUESTS_COMPLETED:
        return QuestProgress.objects.filter(member_id=member_id, completed_at__isnull=False).count()
    return 0


def badge_threshold(badge: Badge) -> int:
    return 1 if badge.criterion == Badge.Criterion.TIER_REACHED else max(badge.threshold, 1)


def awards_due(badge: Badge, progress: int) -> int:
    """How many awards the progress earns: one, or one per threshold for a repeatable badge."""
    threshold = badge_threshold(badge)
    if badge.repeatable and badge.criterion in (
        Badge.Criterion.ACTION_COUNT,
        Badge.Criterion.QUESTS_COMPLETED,
    ):
        return progress // threshold
    return int(progress >= threshold)


def _touches(badge: Badge, touched: Touched) -> bool:
    kind = badge.criterion
    return (
        (kind == Badge.Criterion.ACTION_COUNT and badge.action_id in touched.actions)
        or (kind == Badge.Criterion.STREAK_LENGTH and badge.streak_id in touched.streaks)
        or (kind == Badge.Criterion.GROWTH_REACHED and touched.growth)
        or (kind == Badge.Criterion.TIER_REACHED and touched.tier)
        or (kind == Badge.Criterion.QUESTS_COMPLETED and touched.quests)
    )


def badges_evaluate(
    *,
    standing: MemberStanding,
    program: CompiledProgram,
    touched: Touched,
    backfilled: bool = False,
    at: datetime | None = None,
) -> list[BadgeAward]:
    """Award every active badge the member now qualifies for among those ``touched`` affects
    (bonuses counting from ``at``, default now)."""
    badges = [b for b in program.badges if _touches(b, touched)]
    awarded = []
    for badge in badges:
        progress = badge_progress(badge, member_id=standing.pk, standing=standing, program=program)
        held = _held(standing.pk, badge)["held"]
        for _ in range(awards_due(badge, progress) - held):
            awarded.append(
                badge_award(standing=standing, badge=badge, backfilled=backfilled, at=at)
            )
    return awarded


def badge_award(
    *,
    standing: MemberStanding,
    badge: Badge,
    operator=None,
    backfilled: bool = False,
    at: datetime | None = None,
) -> BadgeAward:
    """Award the badge once more, with its bonus as ledger entries whose source is the award,
    counting from ``at`` (the event that earned it; default now)."""
    held = _held(standing.pk, badge)
    award = BadgeAward(
        member_id=standing.pk,
        badge=badge,
        sequence=held["last"] + 1,
        backfilled=backfilled,
        operator=operator if getattr(operator, "pk", None) else None,
    )
    # Inside the event flow, written with its flush (before the bonus's ledger entries).
    work = unit_of_work.current()
    if work is not None:
        work.award(award)
    else:
        award.save()
    held["held"] += 1
    held["last"] = award.sequence
    if not backfilled:  # a back-fill awards quietly: no flood of notifications
        webhook_emit(
            type="badge.awarded",
            member_id=standing.pk,
            data={
                "member": member_external_id(standing.pk),
                "badge": badge.code,
                "name": badge.name,
                "level": badge.level,
                "sequence": award.sequence,
            },
        )
    _bonus(
        standing,
        SourceType.BADGE,
        award,
        badge.code,
        f"Badge {badge.code}",
        badge.bonus_growth,
        badge.bonus_points,
        at=at,
    )
    return award


def _held_by(member_ids: list[int]) -> dict[tuple[int, int], dict[str, int]]:
    """``_held`` of every badge the members have been awarded, keyed by (member, badge)."""
    members, params = sql.any_of("member_id", member_ids)
    rows = sql.fetch(
        "SELECT member_id, badge_id, "
        "SUM(CASE WHEN revoked_at IS NULL THEN 1 ELSE 0 END), MAX(sequence) "
        f"FROM {BadgeAward._meta.db_table} WHERE {members} GROUP BY member_id, badge_id",
        params,
    )
    return {
        (member, badge): {"held": int(held), "last": last} for member, badge, held, last in rows
    }


def _held(member_id: int, badge: Badge) -> dict[str, int]:
    """The member's awards of the badge not revoked (``held``) and the last sequence given
    (``last``): read once per unit of work for all its members, else now."""
    work = unit_of_work.current()
    if work is None:
        rows = _held_by([member_id])
    else:
        rows = work.memo("badge_awards", lambda: _held_by(work.member_ids))
    return rows.setdefault((member_id, badge.pk), {"held": 0, "last": 0})


def _bonus(
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
    names the entries; a row the unit of work has not written yet gets it at the flush. Inside
    the event flow the bonus is also listed for the event's answer (``code`` names it there).
    ``at``: when the bonus counts (the time of the event that set it off; default now)."""
    named = {"source_id": str(source.pk)} if source.pk else {"source": source}
    work = unit_of_work.current()
    if work is not None and (growth or points):
        work.bonuses.append(
            {"source": str(source_type), "code": code, "growth": growth, "points": points}
        )
    if growth:
        ledger_post(
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
            standing=standing,
            amount=points,
            kind=EntryKind.BONUS,
            source_type=source_type,
            reason=reason,
            effective_at=at,
            **named,
        )


def badges_revoke_unearned(
    *, standing: MemberStanding, program: CompiledProgram, touched: Touched, reason: str
) -> list[BadgeAward]:
    """Revoke, newest first, the awards of badges set to ``revoke_on_reversal`` that the
    member no longer qualifies for. Bonuses already given stay."""
    revoked = []
    for badge in program.badges:
        if not badge.revoke_on_reversal or not _touches(badge, touched):
            continue
        progress = badge_progress(badge, member_id=standing.pk, standing=standing, program=program)
        held = list(
            BadgeAward.objects.filter(
                member_id=standing.pk, badge=badge, revoked_at__isnull=True
            ).order_by("-sequence")
        )
        for award in held[: max(len(held) - awards_due(badge, progress), 0)]:
            award.revoked_at, award.revoke_reason = timezone.now(), reason
            award.save(update_fields=["revoked_at", "revoke_reason"])
            revoked.append(award)
    return revoked


# --- Quests -----------------------------------------------------------------------------------


def quest_period_start(quest: Quest, at: datetime) -> date:
    period = QUEST_PERIODS.get(quest.scope)
    return period_start(period, at) if period else LIFETIME_START


def quests_progress(
    *, standing: MemberStanding, action_id: int, occurred_at: datetime, program: CompiledProgram
) -> tuple[list[Quest], list[BadgeAward]]:
    """Count the event towards every active quest with a step on its action, in the quest's
    period holding ``occurred_at``; reward the quests this completes."""
    completed, awards = [], []
    for quest in program.quests_by_action.get(action_id, ()):
        progress = _quest_progress(standing.pk, quest, quest_period_start(quest, occurred_at))
        if progress.completed_at is not None:
            continue
        steps = list(quest.steps.all())
        counts = dict(progress.step_counts)
        for step in steps:
            if step.action_id == action_id:
                counts[str(step.pk)] = min(counts.get(str(step.pk), 0) + 1, step.count)
        progress.step_counts = counts
        if not all(counts.get(str(step.pk), 0) >= step.count for step in steps):
            unit_of_work.save(progress)
        else:
            progress.completed_at = timezone.now()
            # Written at once: its id names the bonus, and badges count completed quests.
            unit_of_work.save(progress, now=True)
            _bonus(
                standing,
                SourceType.QUEST,
                progress,
                quest.code,
                f"Quest {quest.code}",
                quest.reward_growth,
                quest.reward_points,
                at=occurred_at,
            )
            if quest.reward_badge_id:
                awards.append(
                    badge_award(standing=standing, badge=quest.reward_badge, at=occurred_at)
                )
            completed.append(quest)
            webhook_emit(
                type="quest.completed",
                member_id=standing.pk,
                data={
                    "member": member_external_id(standing.pk),
                    "quest": quest.code,
                    "period_start": progress.period_start.isoformat(),
                    "reward": {"points": quest.reward_points, "growth": quest.reward_growth},
                },
            )
    return completed, awards


def _progress_of(member_ids: list[int], floor: date) -> list[QuestProgress]:
    """The members' lifetime quest progress and that of periods starting from ``floor``."""
    members, params = sql.any_of("member_id", member_ids)
    return sql.select(
        QuestProgress,
        f"{members} AND (period_start = %s OR period_start >= %s)",
        [*params, LIFETIME_START, floor],
    )


def _quest_progress(member_id: int, quest: Quest, start: date) -> QuestProgress:
    work = unit_of_work.current()
    if work is None:
        return QuestProgress.objects.get_or_create(
            member_id=member_id, quest=quest, period_start=start
        )[0]
    return work.row(
        QuestProgress,
        (member_id, quest.pk, start),
        index=lambda p: (p.member_id, p.quest_id, p.period_start),
        query=lambda ids: _progress_of(ids, work.period_floor),
        new=lambda: QuestProgress(member_id=member_id, quest=quest, period_start=start),
    )


# --- The event hook ---------------------------------------------------------------------------


def on_event(
    *,
    standing: MemberStanding,
    action_id: int,
    occurred_at: datetime,
    growth: int,
    tier_changed: bool,
    program: CompiledProgram,
) -> tuple[dict[str, Any], TierMove | None]:
    """Tally, streaks, quests and badges for one recorded event. Bonuses may lift the tier:
    the move is returned beside what was played."""
    tally_add(member_id=standing.pk, action_id=action_id, delta=1)
    touched = Touched(actions={action_id}, growth=growth > 0, tier=tier_changed)
    tier = program.tier(standing.tier_id)
    freezes = int(tier.privilege_param("streak_freezes", "count") or 0) if tier else 0
    streaks = []
    for streak in program.streaks_by_action.get(action_id, ()):
        state = streak_touch(
            member_id=standing.pk,
            streak=streak,
            day=local_date(occurred_at),
            freezes_per_month=freezes,
        )
        touched.streaks.add(streak.pk)
        streaks.append({"streak": streak.code, "current": state.current, "longest": state.longest})
    growth_before = standing.growth
    quests, quest_awards = quests_progress(
        standing=standing, action_id=action_id, occurred_at=occurred_at, program=program
    )
    touched.quests = bool(quests)
    awards = quest_awards + badges_evaluate(
        standing=standing, program=program, touched=touched, at=occurred_at
    )
    tier_move = None
    if standing.growth > growth_before:
        tier_move = tier_upgrade_if_qualified(standing=standing, program=program, at=timezone.now())
        if tier_move:
            awards += badges_evaluate(
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


def badges_on_tier_change(
    *, standing: MemberStanding, program: CompiledProgram, at: datetime | None = None
) -> list[BadgeAward]:
    """The member's tier moved outside an event (an operator's growth adjustment or lock, the
    review): award the tier and growth badges now due. A bonus that lifts the tier again is
    followed until nothing more is due. Precondition: caller holds the lock."""
    awards: list[BadgeAward] = []
    while True:
        growth_before = standing.growth
        awarded = badges_evaluate(
            standing=standing, program=program, touched=Touched(tier=True, growth=True), at=at
        )
        awards += awarded
        if not awarded or standing.growth == growth_before:
            return awards
        if not tier_upgrade_if_qualified(standing=standing, program=program, at=timezone.now()):
            return awards


def on_reversal(
    *, standing: MemberStanding, action_id: int, occurred_at: datetime, program: CompiledProgram
) -> list[BadgeAward]:
    """A full reversal: the occurrence no longer counts for tallies (badges may be revoked)."""
    tally_add(member_id=standing.pk, action_id=action_id, delta=-1)
    touched = Touched(actions={action_id}, growth=True)
    return badges_revoke_unearned(
        standing=standing, program=program, touched=touched, reason="reversal"
    )


# --- Operators --------------------------------------------------------------------------------


def badge_backfill(*, badge: Badge, chunk_size: int = 500) -> int:
    """Award a new or changed badge to every member who already qualifies, quietly
    (``backfilled``: no notification), one member per transaction, in chunks. Returns awards."""
    if not badge.is_active or badge.criterion == Badge.Criterion.MANUAL:
        return 0
    program = compiled_program()
    awarded = 0
    last = 0
    while True:
        ids = list(
            _candidates(badge)
            .filter(member_id__gt=last)
            .order_by("member_id")
            .values_list("member_id", flat=True)[:chunk_size]
        )
        if not ids:
            return awarded
        last = ids[-1]
        for member_id in ids:
            with transaction.atomic():
                standing = lock_standing(member_id)
                progress = badge_progress(
                    badge, member_id=member_id, standing=standing, program=program
                )
                held = BadgeAward.objects.filter(
                    member_id=member_id, badge=badge, revoked_at__isnull=True
                ).count()
                for _ in range(awards_due(badge, progress) - held):
                    badge_award(standing=standing, badge=badge, backfilled=True)
                    awarded += 1


def _candidates(badge: Badge):
    """Members who might qualify: a cheap filter before the exact check under the lock."""
    threshold = badge_threshold(badge)
    kind = badge.criterion
    if kind == Badge.Criterion.ACTION_COUNT:
        return ActionTally.objects.filter(action_id=badge.action_id, count__gte=threshold)
    if kind == Badge.Criterion.STREAK_LENGTH:
        return MemberStreak.objects.filter(streak_id=badge.streak_id, longest__gte=threshold)
    if kind == Badge.Criterion.GROWTH_REACHED:
        return MemberStanding.objects.filter(growth__gte=threshold)
    if kind == Badge.Criterion.TIER_REACHED:
        return MemberStanding.objects.filter(tier__position__gte=badge.tier.position)
    return (
        QuestProgress.objects.filter(completed_at__isnull=False)
        .values("member_id")
        .annotate(done=Count("id"))
        .filter(done__gte=threshold)
    )


def badge_grant(*, member_id: int, badge: Badge, operator=None) -> BadgeAward:
    """Grant a badge by hand (any criterion)."""
    with transaction.atomic():
        standing = lock_standing(member_id)
        return badge_award(standing=standing, badge=badge, operator=operator)


def badge_revoke(*, award: BadgeAward, reason: str = "revoked by an operator") -> BadgeAward:
    if award.revoked_at is None:
        award.revoked_at, award.revoke_reason = timezone.now(), reason
        award.save(update_fields=["revoked_at", "revoke_reason"])
    return award
