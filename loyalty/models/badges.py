from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from loyalty.models.audit import operator_of
from loyalty.models.content import Translatable


class ActionTally(models.Model):
    """How often a member did an action, ever (badges count it; reversals take it back)."""

    # No index of its own: a composite index of the table (below) leads with it.
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        verbose_name=_("member"),
    )
    action = models.ForeignKey(
        "loyalty.Action", on_delete=models.CASCADE, related_name="+", verbose_name=_("action")
    )
    count = models.PositiveIntegerField(default=0, verbose_name=_("count"))

    class Meta:
        verbose_name = _("action tally")
        verbose_name_plural = _("action tallies")
        constraints = [
            models.UniqueConstraint(fields=["member", "action"], name="one_tally_per_action")
        ]

    def __str__(self) -> str:
        return f"{self.member_id}/{self.action_id}: {self.count}"


class Streak(models.Model):
    """Consecutive local days on which a member did the action (e.g. daily check-in)."""

    code = models.SlugField(max_length=64, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    action = models.ForeignKey(
        "loyalty.Action", on_delete=models.PROTECT, related_name="streaks", verbose_name=_("action")
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("streak")
        verbose_name_plural = _("streaks")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.name


class MemberStreak(models.Model):
    # No index of its own: a composite index of the table (below) leads with it.
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.CASCADE,
        related_name="streaks",
        db_index=False,
        verbose_name=_("member"),
    )
    streak = models.ForeignKey(
        Streak, on_delete=models.CASCADE, related_name="+", verbose_name=_("streak")
    )
    current = models.PositiveIntegerField(default=0, verbose_name=_("current"))
    longest = models.PositiveIntegerField(default=0, verbose_name=_("longest"))
    last_day = models.DateField(null=True, verbose_name=_("last day"))
    freezes_month = models.DateField(
        null=True, help_text=_("The month freezes_used counts in."), verbose_name=_("freezes month")
    )
    freezes_used = models.PositiveIntegerField(default=0, verbose_name=_("freezes used"))

    class Meta:
        verbose_name = _("member streak")
        verbose_name_plural = _("member streaks")
        constraints = [
            models.UniqueConstraint(fields=["member", "streak"], name="one_streak_state_per_member")
        ]

    def __str__(self) -> str:
        return f"{self.member_id}/{self.streak_id}: {self.current} (best {self.longest})"


class Badge(Translatable):
    """A badge; its criterion is data: a kind and its parameters."""

    class Criterion(models.TextChoices):
        ACTION_COUNT = "action_count", _("Did an action N times (action, threshold)")
        STREAK_LENGTH = "streak_length", _("Reached a streak of N days (streak, threshold)")
        GROWTH_REACHED = "growth_reached", _("Reached N growth (threshold)")
        TIER_REACHED = "tier_reached", _("Reached a tier (tier)")
        QUESTS_COMPLETED = "quests_completed", _("Completed N quests (threshold)")
        MANUAL = "manual", _("Granted by hand")

    class Level(models.TextChoices):
        NONE = "", _("—")
        BRONZE = "bronze", _("Bronze")
        SILVER = "silver", _("Silver")
        GOLD = "gold", _("Gold")

    code = models.SlugField(max_length=64, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    image_url = models.URLField(blank=True, verbose_name=_("image url"))
    level = models.CharField(
        max_length=6, choices=Level.choices, blank=True, default="", verbose_name=_("level")
    )
    criterion = models.CharField(
        max_length=20, choices=Criterion.choices, verbose_name=_("criterion")
    )
    action = models.ForeignKey(
        "loyalty.Action",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("action"),
    )
    streak = models.ForeignKey(
        Streak,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("streak"),
    )
    tier = models.ForeignKey(
        "loyalty.Tier",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("tier"),
    )
    threshold = models.PositiveIntegerField(default=1, verbose_name=_("threshold"))
    repeatable = models.BooleanField(
        default=False,
        help_text=_("Awarded again at every multiple of the threshold (action and quest counts)."),
        verbose_name=_("repeatable"),
    )
    secret = models.BooleanField(
        default=False, help_text=_("Hidden from members until earned."), verbose_name=_("secret")
    )
    bonus_growth = models.PositiveIntegerField(default=0, verbose_name=_("bonus growth"))
    bonus_points = models.PositiveIntegerField(default=0, verbose_name=_("bonus points"))
    revoke_on_reversal = models.BooleanField(
        default=False,
        help_text=_("Revoke when a reversal takes the member back below the threshold."),
        verbose_name=_("revoke on reversal"),
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    position = models.IntegerField(default=100, verbose_name=_("position"))
    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("badge")
        verbose_name_plural = _("badges")
        ordering = ["position", "code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.level})" if self.level else self.name


class BadgeAward(models.Model):
    """One award of a badge to a member; ``sequence`` counts the awards of a repeatable badge."""

    # No index of its own: a composite index of the table (below) leads with it.
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.PROTECT,
        related_name="badge_awards",
        db_index=False,
        verbose_name=_("member"),
    )
    badge = models.ForeignKey(
        Badge, on_delete=models.PROTECT, related_name="awards", verbose_name=_("badge")
    )
    sequence = models.PositiveIntegerField(default=1, verbose_name=_("sequence"))
    awarded_at = models.DateTimeField(auto_now_add=True, verbose_name=_("awarded at"))
    backfilled = models.BooleanField(
        default=False,
        help_text=_("Awarded by a back-fill, without notification."),
        verbose_name=_("backfilled"),
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("operator"),
    )
    revoked_at = models.DateTimeField(null=True, blank=True, verbose_name=_("revoked at"))
    revoke_reason = models.CharField(max_length=200, blank=True, verbose_name=_("revoke reason"))

    class Meta:
        verbose_name = _("badge award")
        verbose_name_plural = _("badge awards")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["member", "badge", "sequence"], name="one_award_per_member_badge_sequence"
            )
        ]

    def __str__(self) -> str:
        return f"{self.badge} #{self.sequence} for {self.member_id}"


class BadgeShare(models.Model):
    """A badge the member chose to show the world: a public page with the badge and the
    member's display name only, until they stop sharing it."""

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )
    badge = models.ForeignKey(
        Badge, on_delete=models.CASCADE, related_name="+", verbose_name=_("badge")
    )
    slug = models.SlugField(max_length=32, unique=True, verbose_name=_("slug"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("shared badge")
        verbose_name_plural = _("shared badges")
        constraints = [
            models.UniqueConstraint(fields=["member", "badge"], name="one_share_per_member_badge")
        ]

    def __str__(self) -> str:
        return self.slug
