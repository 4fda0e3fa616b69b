from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from loyalty.models.audit import operator_of
from loyalty.models.content import Translatable
from loyalty.models.program import HEX_COLOUR
from loyalty.models.validation import check_constraints_on_fields


class Tier(Translatable):
    """A level members reach by growth. ``position`` orders tiers from lowest (0) up."""

    class Window(models.TextChoices):
        LIFETIME = "lifetime", _("Lifetime growth")
        ROLLING_DAYS = "rolling_days", _("Growth in the last N days")
        CALENDAR_YEAR = "calendar_year", _("Growth this calendar year")

    code = models.SlugField(max_length=64, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    position = models.PositiveSmallIntegerField(unique=True, verbose_name=_("position"))
    growth_threshold = models.PositiveIntegerField(
        help_text=_("Qualifying growth needed to reach and keep this tier."),
        verbose_name=_("growth threshold"),
    )
    window = models.CharField(
        max_length=16, choices=Window.choices, default=Window.LIFETIME, verbose_name=_("window")
    )
    window_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("For the rolling window: how many days."),
        verbose_name=_("window days"),
    )
    grace_days = models.PositiveIntegerField(
        default=30,
        help_text=_(
            "Days a member below the threshold keeps the tier before the review lowers it."
        ),
        verbose_name=_("grace days"),
    )
    description = models.TextField(blank=True, verbose_name=_("description"))
    colour = models.CharField(
        max_length=7,
        blank=True,
        validators=[HEX_COLOUR],
        help_text=_("The tier's badge colour in the member center, as #rrggbb (empty: none)."),
        verbose_name=_("colour"),
    )

    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["position"]
        constraints = [
            models.CheckConstraint(
                # NULL days compare as unknown, which a CHECK lets pass: refused explicitly.
                condition=~models.Q(window="rolling_days")
                | models.Q(window_days__isnull=False, window_days__gt=0),
                name="rolling_window_has_days",
                violation_error_message=_("A rolling window needs its number of days."),
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        check_constraints_on_fields(self, {"rolling_window_has_days": "window_days"})


class Privilege(models.Model):
    """A benefit of a tier, as data. Some kinds the engine applies itself; ``host`` privileges
    (free shipping, priority support…) are returned to the host app to honour."""

    class Kind(models.TextChoices):
        POINTS_MULTIPLIER = "points_multiplier", _("Points multiplier (params: multiplier)")
        GROWTH_MULTIPLIER = "growth_multiplier", _("Growth multiplier (params: multiplier)")
        REWARD_DISCOUNT = "reward_discount", _("Discount on rewards (params: percent)")
        STREAK_FREEZES = "streak_freezes", _("Streak freezes per month (params: count)")
        HOST = "host", _("Honoured by the host app (params: free-form)")

    tier = models.ForeignKey(
        Tier, on_delete=models.CASCADE, related_name="privileges", verbose_name=_("tier")
    )
    code = models.SlugField(max_length=64, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    kind = models.CharField(
        max_length=24, choices=Kind.choices, default=Kind.HOST, verbose_name=_("kind")
    )
    params = models.JSONField(default=dict, blank=True, verbose_name=_("params"))
    description = models.TextField(blank=True, verbose_name=_("description"))

    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("privilege")
        verbose_name_plural = _("privileges")
        ordering = ["tier__position", "code"]
        constraints = [
            models.UniqueConstraint(fields=["tier", "code"], name="one_privilege_code_per_tier")
        ]

    def __str__(self) -> str:
        return f"{self.tier.code}: {self.name}"


class TierChange(models.Model):
    """Every change of a member's tier, with why."""

    class Reason(models.TextChoices):
        UPGRADE = "upgrade", _("Upgrade by growth")
        REVIEW = "review", _("Downgrade at review")
        OPERATOR = "operator", _("Set by an operator")
        LOCK = "lock", _("Locked by an operator")
        UNLOCK = "unlock", _("Unlocked by an operator")

    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.PROTECT,
        related_name="tier_changes",
        verbose_name=_("member"),
    )
    from_tier = models.ForeignKey(
        Tier, null=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("from tier")
    )
    to_tier = models.ForeignKey(
        Tier, null=True, on_delete=models.PROTECT, related_name="+", verbose_name=_("to tier")
    )
    reason = models.CharField(max_length=10, choices=Reason.choices, verbose_name=_("reason"))
    qualifying_growth = models.BigIntegerField(default=0, verbose_name=_("qualifying growth"))
    note = models.CharField(max_length=200, blank=True, verbose_name=_("note"))
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("operator"),
    )
    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, verbose_name=_("created at")
    )

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        ordering = ["-id"]
        indexes = [models.Index(fields=["member", "-id"], name="tier_change_member_idx")]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.from_tier_id} → {self.to_tier_id} ({self.reason})"
