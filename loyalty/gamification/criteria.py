"""Badge criteria as data, each kind with a small evaluator: the member's progress in the units
of the badge's threshold, what in an event can move it, whether a repeatable badge is earned once
per threshold, and who might already qualify (for a back-fill). The one place per kind: adding
a criterion means adding a class here and its choice on the model."""

from dataclasses import dataclass, field

from django.db.models import Count, QuerySet

from loyalty.gamification.tallies import streak_state, tally_row
from loyalty.models import ActionTally, Badge, MemberStanding, MemberStreak, QuestProgress
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.program.compiled import CompiledProgram


@dataclass(frozen=True)
class Holder:
    """Whose progress: the member's standing, the unit of work their rows are in (None on the
    read side: read from the database), and the program."""

    work: UnitOfWork | None
    standing: MemberStanding
    program: CompiledProgram


@dataclass
class Touched:
    """What an event changed, so only the badges it could affect are evaluated."""

    actions: set[int] = field(default_factory=set)
    streaks: set[int] = field(default_factory=set)
    growth: bool = False
    tier: bool = False
    quests: bool = False


class Criterion:
    """A kind of badge criterion. The base meets nothing on its own (a badge granted by hand)."""

    # A repeatable badge of this kind is earned again at every multiple of its threshold.
    counts_repeats = False

    def threshold(self, badge: Badge) -> int:
        return max(badge.threshold, 1)

    def listens(self, badge: Badge, touched: Touched) -> bool:
        """Whether what an event touched can move the member's progress."""
        return False

    def progress(self, badge: Badge, member: Holder) -> int:
        """Progress in the units of the threshold: from ``work``'s rows when in one, else read
        from the database."""
        return 0

    def candidates(self, badge: Badge) -> QuerySet | None:
        """Rows with the ``member_id`` of every member who might qualify (a cheap filter
        before the exact check under each member's lock), or None: nobody does by themselves."""
        return None

    def awards_due(self, badge: Badge, progress: int) -> int:
        """How many awards the progress earns: one, or one per threshold (repeatable)."""
        threshold = self.threshold(badge)
        if badge.repeatable and self.counts_repeats:
            return progress // threshold
        return int(progress >= threshold)


class ActionCount(Criterion):
    """Did the action N times (fully reversed occurrences uncounted)."""

    counts_repeats = True

    def listens(self, badge: Badge, touched: Touched) -> bool:
        return badge.action_id in touched.actions

    def progress(self, badge: Badge, member: Holder) -> int:
        if member.work is not None:
            return tally_row(member.work, member.standing.pk, badge.action_id).count
        found = ActionTally.objects.filter(member_id=member.standing.pk, action_id=badge.action_id)
        return found.values_list("count", flat=True).first() or 0

    def candidates(self, badge: Badge) -> QuerySet:
        threshold = self.threshold(badge)
        return ActionTally.objects.filter(action_id=badge.action_id, count__gte=threshold)


class StreakLength(Criterion):
    """Kept a streak N days (the longest run counts)."""

    def listens(self, badge: Badge, touched: Touched) -> bool:
        return badge.streak_id in touched.streaks

    def progress(self, badge: Badge, member: Holder) -> int:
        if member.work is not None:
            return streak_state(member.work, member.standing.pk, badge.streak_id).longest
        found = MemberStreak.objects.filter(member_id=member.standing.pk, streak_id=badge.streak_id)
        return found.values_list("longest", flat=True).first() or 0

    def candidates(self, badge: Badge) -> QuerySet:
        threshold = self.threshold(badge)
        return MemberStreak.objects.filter(streak_id=badge.streak_id, longest__gte=threshold)


class GrowthReached(Criterion):
    """Growth reached N."""

    def listens(self, badge: Badge, touched: Touched) -> bool:
        return touched.growth

    def progress(self, badge: Badge, member: Holder) -> int:
        return member.standing.growth

    def candidates(self, badge: Badge) -> QuerySet:
        return MemberStanding.objects.filter(growth__gte=self.threshold(badge))


class TierReached(Criterion):
    """Reached the tier, or one above it."""

    def threshold(self, badge: Badge) -> int:
        return 1

    def listens(self, badge: Badge, touched: Touched) -> bool:
        return touched.tier

    def progress(self, badge: Badge, member: Holder) -> int:
        tier = member.program.tier(member.standing.tier_id)
        needed = member.program.tier(badge.tier_id)
        return int(bool(tier and needed and tier.position >= needed.position))

    def candidates(self, badge: Badge) -> QuerySet:
        return MemberStanding.objects.filter(tier__position__gte=badge.tier.position)


class QuestsCompleted(Criterion):
    """Completed N quests (any period)."""

    counts_repeats = True

    def listens(self, badge: Badge, touched: Touched) -> bool:
        return touched.quests

    def progress(self, badge: Badge, member: Holder) -> int:
        done = QuestProgress.objects.filter(
            member_id=member.standing.pk, completed_at__isnull=False
        )
        return done.count()

    def candidates(self, badge: Badge) -> QuerySet:
        return (
            QuestProgress.objects.filter(completed_at__isnull=False)
            .values("member_id")
            .annotate(done=Count("id"))
            .filter(done__gte=self.threshold(badge))
        )


CRITERIA: dict[str, Criterion] = {
    Badge.Criterion.ACTION_COUNT: ActionCount(),
    Badge.Criterion.STREAK_LENGTH: StreakLength(),
    Badge.Criterion.GROWTH_REACHED: GrowthReached(),
    Badge.Criterion.TIER_REACHED: TierReached(),
    Badge.Criterion.QUESTS_COMPLETED: QuestsCompleted(),
    Badge.Criterion.MANUAL: Criterion(),
}


def criterion_of(badge: Badge) -> Criterion:
    return CRITERIA[badge.criterion]


def badge_progress(
    badge: Badge,
    *,
    work: UnitOfWork | None,
    standing: MemberStanding,
    program: CompiledProgram,
) -> int:
    """The member's progress towards the badge, in the units of its threshold: from the rows of
    ``work`` when evaluated in one, else from the database (the read side)."""
    return criterion_of(badge).progress(badge, Holder(work, standing, program))


def badge_threshold(badge: Badge) -> int:
    return criterion_of(badge).threshold(badge)


def awards_due(badge: Badge, progress: int) -> int:
    return criterion_of(badge).awards_due(badge, progress)
