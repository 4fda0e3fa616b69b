"""Read-side functions serving the API and the admin."""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Member
from loyalty import models
from loyalty.gamification.criteria import awards_due, badge_progress, badge_threshold
from loyalty.gamification.quests import QUEST_PERIODS, quest_period_start
from loyalty.ledger.points import points_expiring
from loyalty.models import (
    BadgeAward,
    LedgerEntry,
    MemberActivity,
    MemberStanding,
    MemberStreak,
    Quest,
    QuestProgress,
    Streak,
)
from loyalty.models.content import translated
from loyalty.periods import local_date, next_period_start, period_start, start_of_day
from loyalty.program.compiled import compiled_program
from loyalty.tiers.moves import GrowthWindows


def member_standing(member: Member) -> MemberStanding:
    """The member's standing, or an unsaved empty one for a member with no events yet."""
    return MemberStanding.objects.filter(pk=member.pk).first() or MemberStanding(member=member)


def member_summary(member: Member) -> dict[str, Any]:
    """Balances in their buckets, growth, tier with privileges, and the way to the next tier."""
    standing = member_standing(member)
    program = compiled_program()
    tier = program.tier(standing.tier_id)
    next_tier = program.next_tier(standing.tier_id)
    windows = GrowthWindows(None, standing, timezone.now())
    summary: dict[str, Any] = {
        "balances": {
            "points": {
                "spendable": standing.points,
                "pending": standing.points_pending,
                "lifetime_earned": standing.points_earned,
                "lifetime_spent": standing.points_spent,
                "lifetime_expired": standing.points_expired,
            },
            "growth": standing.growth,
        },
        "expiring": [
            {"expires_at": row["expires_at"], "points": row["points"]}
            for row in points_expiring(member=member)[:12]
        ],
        "activity": _activity(member),
        "tier": None,
        "next_tier": None,
    }
    if tier:
        summary["tier"] = {
            "code": tier.code,
            "name": translated(tier, "name"),
            "colour": tier.colour,
            "since": standing.tier_since,
            "locked": standing.locked_tier_id is not None,
            "grace_until": standing.grace_until,
            "qualifying_growth": windows.for_tier(tier),
            "privileges": [
                {key: p[key] for key in ("code", "name", "kind", "params", "description")}
                for p in tier.privileges
            ],
        }
    if next_tier:
        qualifying = windows.for_tier(next_tier)
        summary["next_tier"] = {
            "code": next_tier.code,
            "name": translated(next_tier, "name"),
            "growth_threshold": next_tier.growth_threshold,
            "window": next_tier.window,
            "qualifying_growth": qualifying,
            "growth_needed": max(next_tier.growth_threshold - qualifying, 0),
        }
    return summary


def member_ledger(member: Member) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(member=member).select_related("rule_version__rule")


AUDITED = ("Program", "Action", "EarningRule", "RuleCondition", "RuleCap", "Tier", "Privilege")


def program_changes(*, limit: int = 300) -> list[dict[str, Any]]:
    """The latest operator changes to the program across every audited model, newest first,
    each with who made it and the fields it changed (old → new)."""
    records = []
    for name in AUDITED:
        history = getattr(models, name).history
        records.extend(history.select_related("history_user").order_by("-history_date")[:limit])
    records.sort(key=lambda r: r.history_date, reverse=True)
    changes = []
    for record in records[:limit]:
        fields = []
        if record.history_type == "~" and record.prev_record is not None:
            delta = record.diff_against(record.prev_record)
            fields = [{"field": c.field, "old": c.old, "new": c.new} for c in delta.changes]
        changes.append(
            {
                "when": record.history_date,
                "who": record.history_user,
                "what": f"{record.instance_type._meta.verbose_name} {record.instance}",
                "kind": {"+": "created", "~": "changed", "-": "deleted"}[record.history_type],
                "fields": fields,
            }
        )
    return changes


def member_badges(member: Member) -> dict[str, list[dict[str, Any]]]:
    """Earned badges, and progress towards the others; secret badges stay hidden until earned."""
    program = compiled_program()
    standing = member_standing(member)
    held: dict[int, list] = {}
    for award in BadgeAward.objects.filter(member=member, revoked_at__isnull=True).order_by(
        "sequence"
    ):
        held.setdefault(award.badge_id, []).append(award)
    earned, in_progress = [], []
    for badge in program.badges:
        info = {
            "code": badge.code,
            "name": translated(badge, "name"),
            "description": translated(badge, "description"),
            "level": badge.level,
            "image_url": badge.image_url,
            "criterion": badge.criterion,
        }
        awards = held.get(badge.pk, [])
        if awards:
            earned.append(
                {
                    **info,
                    "times": len(awards),
                    "first_awarded_at": awards[0].awarded_at,
                    "last_awarded_at": awards[-1].awarded_at,
                }
            )
        if badge.secret and not awards or badge.criterion == badge.Criterion.MANUAL:
            continue
        if awards and not badge.repeatable:
            continue
        progress = badge_progress(badge, work=None, standing=standing, program=program)
        threshold = badge_threshold(badge) * (
            awards_due(badge, progress) + 1 if badge.repeatable else 1
        )
        in_progress.append({**info, "progress": min(progress, threshold), "threshold": threshold})
    return {"earned": earned, "in_progress": in_progress}


def member_quests(
    member: Member, *, in_segment: Callable[[int], bool] = lambda segment_id: False
) -> list[dict[str, Any]]:
    """Active quests open to the member, with their progress in the current period of each.
    ``in_segment`` tells whether the member is in a segment a quest is kept for."""
    now = timezone.now()
    quests = [
        quest
        for quest in Quest.objects.filter(is_active=True).prefetch_related("steps__action")
        if quest.segment_id is None or in_segment(quest.segment_id)
    ]
    progress = {
        (p.quest_id, p.period_start): p
        for p in QuestProgress.objects.filter(member=member, quest__in=quests)
    }
    returned_on = (
        models.MemberActivity.objects.filter(pk=member.pk)
        .values_list("returned_on", flat=True)
        .first()
    )
    result = []
    for quest in quests:
        start = quest_period_start(quest, now, returned_on)
        if start is None:
            continue  # a quest after a return, not open for this member now
        mine = progress.get((quest.pk, start))
        counts = mine.step_counts if mine else {}
        period = QUEST_PERIODS.get(quest.scope)
        if quest.scope == Quest.Scope.RETURN:
            end = start + timedelta(days=quest.window_days)
        else:
            end = next_period_start(period, start) if period else None
        result.append(
            {
                "code": quest.code,
                "name": translated(quest, "name"),
                "description": translated(quest, "description"),
                "scope": quest.scope,
                "period_start": start if end else None,
                "period_end": end,
                "completed": bool(mine and mine.completed_at),
                "completed_at": mine.completed_at if mine else None,
                "reward": {
                    "points": quest.reward_points,
                    "growth": quest.reward_growth,
                    "badge": quest.reward_badge.code if quest.reward_badge_id else None,
                },
                "steps": [
                    {
                        "action": step.action.code,
                        "count": step.count,
                        "done": counts.get(str(step.pk), 0),
                    }
                    for step in quest.steps.all()
                ],
            }
        )
    return result


def member_streaks(member: Member) -> list[dict[str, Any]]:
    """Each active streak: the current run (0 once a day was missed) and the longest."""
    today = local_date(timezone.now())
    states = {s.streak_id: s for s in MemberStreak.objects.filter(member=member)}
    result = []
    for streak in Streak.objects.filter(is_active=True).select_related("action"):
        state = states.get(streak.pk)
        alive = (
            state is not None
            and state.last_day is not None
            and state.last_day >= today - timedelta(days=1)
        )
        result.append(
            {
                "code": streak.code,
                "name": streak.name,
                "action": streak.action.code,
                "current": state.current if alive else 0,
                "longest": state.longest if state else 0,
                "last_day": state.last_day if state else None,
                "done_today": bool(state and state.last_day == today),
            }
        )
    return result


def _activity(member: Member) -> dict[str, Any] | None:
    activity = MemberActivity.objects.filter(pk=member.pk).first()
    if activity is None:
        return {"state": "new", "since": member.joined_at, "last_key_day": None}
    return {"state": activity.state, "since": activity.since, "last_key_day": activity.last_key_day}


def member_check_ins(member: Member) -> list[dict[str, Any]]:
    """The actions members do from the member center (a daily check-in), each with whether
    the member did it today, this month's days with it, and the streaks on it (current run,
    longest, freezes left this month)."""
    now = timezone.now()
    today = local_date(now)
    month = period_start("month", now)
    next_month = next_period_start("month", month)
    program = compiled_program()
    standing = member_standing(member)
    tier = program.tier(standing.tier_id)
    freezes = int(tier.privilege_param("streak_freezes", "count") or 0) if tier else 0
    states = {s.streak_id: s for s in models.MemberStreak.objects.filter(member=member)}
    found = []
    for action in models.Action.objects.filter(in_member_center=True, is_active=True):
        days = {
            local_date(at)
            for at in models.Event.objects.filter(
                member=member,
                action=action,
                occurred_at__gte=start_of_day(month),
                occurred_at__lt=start_of_day(next_month),
            ).values_list("occurred_at", flat=True)
        }
        streaks = []
        for streak in program.streaks_by_action.get(action.pk, ()):
            state = states.get(streak.pk)
            alive = state is not None and state.last_day and state.last_day >= today - timedelta(1)
            used = state.freezes_used if state and state.freezes_month == month else 0
            streaks.append(
                {
                    "code": streak.code,
                    "name": streak.name,
                    "current": state.current if alive else 0,
                    "longest": state.longest if state else 0,
                    "freezes_left": max(freezes - used, 0),
                }
            )
        found.append(
            {
                "code": action.code,
                "name": action.name,
                "done_today": today in days,
                "days": days,
                "month": month,
                "streaks": streaks,
            }
        )
    return found
