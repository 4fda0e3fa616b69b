from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from loyalty.models.audit import operator_of


class Leaderboard(models.Model):
    class Metric(models.TextChoices):
        GROWTH = "growth", _("Growth earned")
        POINTS = "points", _("Points earned")
        ACTION_COUNT = "action_count", _("Count of an action")

    class Period(models.TextChoices):
        DAY = "day", _("Day")
        WEEK = "week", _("Week")
        MONTH = "month", _("Month")
        ALL_TIME = "all_time", _("All time")

    code = models.SlugField(max_length=64, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    metric = models.CharField(max_length=12, choices=Metric.choices, verbose_name=_("metric"))
    action = models.ForeignKey(
        "loyalty.Action",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("action"),
    )
    period = models.CharField(max_length=8, choices=Period.choices, verbose_name=_("period"))
    size = models.PositiveIntegerField(
        default=10, help_text=_("How many the top list shows."), verbose_name=_("size")
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    excluded_members = models.ManyToManyField(
        "accounts.Member",
        blank=True,
        related_name="+",
        help_text=_("Never shown (staff, test accounts…)."),
        verbose_name=_("excluded members"),
    )
    history = HistoricalRecords(get_user=operator_of, m2m_fields=[])

    class Meta:
        verbose_name = _("leaderboard")
        verbose_name_plural = _("leaderboards")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class LeaderboardScore(models.Model):
    """A member's score on a board in one period, kept as events arrive (and rebuildable from
    the ledger and events)."""

    # No index of its own: a composite index of the table (below) leads with it.
    leaderboard = models.ForeignKey(
        Leaderboard,
        on_delete=models.CASCADE,
        related_name="scores",
        db_index=False,
        verbose_name=_("leaderboard"),
    )
    period_start = models.DateField(verbose_name=_("period start"))
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )
    score = models.BigIntegerField(default=0, verbose_name=_("score"))

    class Meta:
        verbose_name = _("leaderboard score")
        verbose_name_plural = _("leaderboard scores")
        constraints = [
            models.UniqueConstraint(
                fields=["leaderboard", "period_start", "member"],
                name="one_score_per_board_period_member",
            )
        ]
        indexes = [
            models.Index(
                fields=["leaderboard", "period_start", "-score", "member"],
                name="leaderboard_rank_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.leaderboard_id}/{self.period_start}/{self.member_id}: {self.score}"


class StaleLeaderboardSet(models.Model):
    """A board period whose Redis set missed a score's write (Redis was unreachable or slow
    after the commit): the heal job drops the set, which then refills from the database."""

    leaderboard = models.ForeignKey(
        Leaderboard, on_delete=models.CASCADE, related_name="+", verbose_name=_("leaderboard")
    )
    period_start = models.DateField(verbose_name=_("period start"))
    marked_at = models.DateTimeField(auto_now=True, verbose_name=_("marked at"))

    class Meta:
        verbose_name = _("stale leaderboard set")
        verbose_name_plural = _("stale leaderboard sets")
        constraints = [
            models.UniqueConstraint(
                fields=["leaderboard", "period_start"], name="one_stale_mark_per_set"
            )
        ]

    def __str__(self) -> str:
        return f"{self.leaderboard_id}/{self.period_start} (stale)"
