from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from loyalty.models.audit import operator_of
from loyalty.models.content import Translatable


class Quest(Translatable):
    """A goal in a time scope, made of steps "do action X N times", rewarded on completion."""

    class Scope(models.TextChoices):
        ONBOARDING = "onboarding", _("Onboarding (once)")
        DAILY = "daily", _("Daily")
        WEEKLY = "weekly", _("Weekly")
        RETURN = "return", _("After a return (for its window)")

    code = models.SlugField(max_length=64, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    scope = models.CharField(max_length=10, choices=Scope.choices, verbose_name=_("scope"))
    reward_points = models.PositiveIntegerField(default=0, verbose_name=_("reward points"))
    reward_growth = models.PositiveIntegerField(default=0, verbose_name=_("reward growth"))
    reward_badge = models.ForeignKey(
        "loyalty.Badge",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("reward badge"),
    )
    window_days = models.PositiveSmallIntegerField(
        default=14,
        help_text=_(
            "For a quest after a return: the days it stays open from the day a churned member "
            "comes back."
        ),
        verbose_name=_("window days"),
    )
    segment = models.ForeignKey(
        "loyalty.Segment",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="quests",
        help_text=_(
            "Only members of this segment take part (empty: everyone). Its conditions must be "
            "ones the event flow reads: tier, state, balances, dates and member attributes."
        ),
        verbose_name=_("segment"),
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    position = models.IntegerField(default=100, verbose_name=_("position"))
    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("quest")
        verbose_name_plural = _("quests")
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return self.name


class QuestStep(models.Model):
    quest = models.ForeignKey(
        Quest, on_delete=models.CASCADE, related_name="steps", verbose_name=_("quest")
    )
    action = models.ForeignKey(
        "loyalty.Action", on_delete=models.PROTECT, related_name="+", verbose_name=_("action")
    )
    count = models.PositiveIntegerField(default=1, verbose_name=_("count"))

    class Meta:
        verbose_name = _("quest step")
        verbose_name_plural = _("quest steps")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.action} ×{self.count}"


class QuestProgress(models.Model):
    """A member's progress on a quest in one period (onboarding quests have one period)."""

    # No index of its own: a composite index of the table (below) leads with it.
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.CASCADE,
        related_name="quest_progress",
        db_index=False,
        verbose_name=_("member"),
    )
    quest = models.ForeignKey(
        Quest, on_delete=models.CASCADE, related_name="+", verbose_name=_("quest")
    )
    period_start = models.DateField(verbose_name=_("period start"))
    step_counts = models.JSONField(
        default=dict, help_text=_("Step id → count done."), verbose_name=_("step counts")
    )
    completed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("completed at"))

    class Meta:
        verbose_name = _("quest progress")
        verbose_name_plural = _("quest progress")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "quest", "period_start"], name="one_progress_per_quest_period"
            )
        ]
        indexes = [models.Index(fields=["member", "completed_at"], name="quest_completed_idx")]

    def __str__(self) -> str:
        return f"{self.quest_id} for {self.member_id} from {self.period_start}"
