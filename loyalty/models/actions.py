from decimal import Decimal

from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from loyalty.models.audit import operator_field, operator_of
from loyalty.models.lots import MONTH_DAY, ExpiryPolicy
from loyalty.models.validation import check_constraints_on_fields


class Action(models.Model):
    """Something members do that the program values: ``purchase``, ``review``, ``check_in``."""

    code = models.SlugField(max_length=64, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    in_member_center = models.BooleanField(
        default=False,
        help_text=_(
            "Members do this action themselves from the member center's check-in page, once "
            "a day (a daily check-in, say)."
        ),
        verbose_name=_("in the member center"),
    )

    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("action")
        verbose_name_plural = _("actions")
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code


class Rounding(models.TextChoices):
    DOWN = "down", _("Round down")
    HALF_UP = "half_up", _("Round half up")
    UP = "up", _("Round up")


class EarningRule(models.Model):
    """Operator-tuned weights for one action. What the engine runs is the rule's latest
    *version* (``EarningRuleVersion``), a frozen snapshot made each time the rule is saved
    through ``earning_rule_publish``."""

    action = models.ForeignKey(
        Action, on_delete=models.PROTECT, related_name="rules", verbose_name=_("action")
    )
    code = models.SlugField(max_length=64, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    priority = models.IntegerField(
        default=100,
        help_text=_("Rules run in ascending priority; ties by code."),
        verbose_name=_("priority"),
    )
    stop_further_rules = models.BooleanField(
        default=False,
        help_text=_("When this rule credits, rules after it do not run."),
        verbose_name=_("stop further rules"),
    )
    growth_per_occurrence = models.PositiveIntegerField(
        default=0, verbose_name=_("growth per occurrence")
    )
    points_per_occurrence = models.PositiveIntegerField(
        default=0, verbose_name=_("points per occurrence")
    )
    unit_attribute = models.CharField(
        max_length=64,
        blank=True,
        help_text=_("Numeric event attribute for per-unit earning, e.g. amount."),
        verbose_name=_("unit attribute"),
    )
    unit_size = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=Decimal("1.00"),
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Earn the per-unit amounts for every this much of the attribute."),
        verbose_name=_("unit size"),
    )
    growth_per_unit = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        default=Decimal(0),
        validators=[MinValueValidator(0)],
        verbose_name=_("growth per unit"),
    )
    points_per_unit = models.DecimalField(
        max_digits=12,
        decimal_places=4,
        default=Decimal(0),
        validators=[MinValueValidator(0)],
        verbose_name=_("points per unit"),
    )
    rounding = models.CharField(
        max_length=10, choices=Rounding.choices, default=Rounding.DOWN, verbose_name=_("rounding")
    )
    apply_tier_multipliers = models.BooleanField(
        default=True,
        help_text=_("Multiply by the member's tier privileges (points/growth multiplier)."),
        verbose_name=_("apply tier multipliers"),
    )
    cooldown_seconds = models.PositiveIntegerField(
        default=0,
        help_text=_("Minimum time between two credited occurrences."),
        verbose_name=_("cooldown seconds"),
    )
    valid_from = models.DateTimeField(null=True, blank=True, verbose_name=_("valid from"))
    valid_until = models.DateTimeField(null=True, blank=True, verbose_name=_("valid until"))
    new_members_within_days = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("Only for members who joined at most this many days before."),
        verbose_name=_("new members within days"),
    )
    hold_days = models.PositiveIntegerField(
        default=0,
        help_text=_("Keep the points pending this many days (e.g. the return window)."),
        verbose_name=_("hold days"),
    )
    budget_points = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text=_(
            "Points the rule may credit in all, across members; empty: no limit. Once spent, "
            "the rule credits nothing more (reason budget_spent)."
        ),
        verbose_name=_("budget (points)"),
    )
    points_expiry = models.CharField(
        max_length=16,
        choices=ExpiryPolicy.choices,
        default=ExpiryPolicy.INHERIT,
        verbose_name=_("points expiry"),
    )
    points_expiry_n = models.PositiveIntegerField(default=12, verbose_name=_("points expiry n"))
    points_expiry_date = models.CharField(
        max_length=5,
        default="12-31",
        validators=[MONTH_DAY],
        help_text=_("MM-DD"),
        verbose_name=_("points expiry date"),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        ordering = ["action__code", "priority", "code"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(valid_until__isnull=True)
                | models.Q(valid_from__isnull=True)
                | models.Q(valid_until__gt=models.F("valid_from")),
                name="rule_window_ordered",
                violation_error_message=_("The rule must end after it starts."),
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        check_constraints_on_fields(self, {"rule_window_ordered": "valid_until"})


class RuleCondition(models.Model):
    """``attribute operator value`` on the event's attributes; all conditions must hold."""

    class Operator(models.TextChoices):
        EQ = "eq", _("equals")
        NE = "ne", _("differs from")
        GT = "gt", _(">")
        GTE = "gte", _("≥")
        LT = "lt", _("<")
        LTE = "lte", _("≤")
        IN = "in", _("is one of")
        CONTAINS = "contains", _("contains")
        MULTIPLE_OF = "multiple_of", _("is a multiple of")

    rule = models.ForeignKey(
        EarningRule, on_delete=models.CASCADE, related_name="conditions", verbose_name=_("rule")
    )
    attribute = models.CharField(max_length=64, verbose_name=_("attribute"))
    operator = models.CharField(
        max_length=12, choices=Operator.choices, verbose_name=_("comparison")
    )
    value = models.JSONField(help_text=_('JSON: 100, "gold", ["a", "b"].'), verbose_name=_("value"))

    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("rule condition")
        verbose_name_plural = _("rule conditions")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.attribute} {self.operator} {self.value!r}"


class Period(models.TextChoices):
    DAY = "day", _("Day")
    WEEK = "week", _("Week")
    MONTH = "month", _("Month")
    LIFETIME = "lifetime", _("Lifetime")


class RuleCap(models.Model):
    """At most ``limit`` occurrences, points or growth from the rule per member and period."""

    class Measure(models.TextChoices):
        OCCURRENCES = "occurrences", _("Credited occurrences")
        POINTS = "points", _("Points credited")
        GROWTH = "growth", _("Growth credited")

    rule = models.ForeignKey(
        EarningRule, on_delete=models.CASCADE, related_name="caps", verbose_name=_("rule")
    )
    period = models.CharField(max_length=10, choices=Period.choices, verbose_name=_("period"))
    measure = models.CharField(
        max_length=12,
        choices=Measure.choices,
        default=Measure.OCCURRENCES,
        verbose_name=_("measure"),
    )
    limit = models.PositiveIntegerField(verbose_name=_("limit"))

    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("rule cap")
        verbose_name_plural = _("rule caps")
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "period", "measure"], name="one_cap_per_period")
        ]

    def __str__(self) -> str:
        return f"{self.limit} {self.measure} per {self.period}"


class EarningRuleVersion(models.Model):
    """A frozen copy of a rule as it was when saved. Credits name the version behind them."""

    rule = models.ForeignKey(
        EarningRule, on_delete=models.PROTECT, related_name="versions", verbose_name=_("rule")
    )
    version = models.PositiveIntegerField(verbose_name=_("version"))
    definition = models.JSONField(verbose_name=_("definition"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    created_by = operator_field(_("created by"))

    class Meta:
        verbose_name = _("earning rule version")
        verbose_name_plural = _("earning rule versions")
        ordering = ["rule", "-version"]
        constraints = [
            models.UniqueConstraint(fields=["rule", "version"], name="one_number_per_rule_version")
        ]

    def __str__(self) -> str:
        return f"{self.rule.code} v{self.version}"


class RuleBudget(models.Model):
    """What a rule with a total budget has credited so far: one row per rule, moved only by a
    conditional update that never passes the budget (``loyalty.engine.evaluate``)."""

    rule = models.OneToOneField(
        EarningRule,
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="budget",
        verbose_name=_("rule"),
    )
    spent = models.PositiveBigIntegerField(default=0, verbose_name=_("spent"))

    class Meta:
        verbose_name = _("rule budget")
        verbose_name_plural = _("rule budgets")

    def __str__(self) -> str:
        return f"{self.rule_id}: {self.spent}"
