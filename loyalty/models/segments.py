from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from loyalty.models.audit import operator_of


class Segment(models.Model):
    """A saved member filter (用户分层): members who meet every one of its conditions."""

    code = models.SlugField(max_length=64, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    description = models.TextField(blank=True, verbose_name=_("description"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class SegmentCondition(models.Model):
    """One condition of a segment: a member property, an operator and a value."""

    class Field(models.TextChoices):
        TIER = "tier", _("Tier (codes)")
        STATE = "state", _("Activity state")
        POINTS = "points", _("Points balance")
        GROWTH = "growth", _("Growth")
        POINTS_EARNED = "points_earned", _("Points earned, lifetime")
        POINTS_SPENT = "points_spent", _("Points spent, lifetime")
        EVENTS = "events_count", _("Events, lifetime")
        JOINED = "joined", _("Joined on (date)")
        LAST_KEY_DAY = "last_key_day", _("Last key-action day (date)")
        DAYS_AWAY = "days_away", _("Days since the key action")
        BADGE = "badge", _("Holds the badge (codes)")
        QUEST = "quest", _("Completed the quest (codes)")
        ATTRIBUTE = "attribute", _("Member attribute")
        CHURN_RISK = "churn_risk", _("At risk from declining key actions")

    class Operator(models.TextChoices):
        IN = "in", _("is one of")
        NOT_IN = "not_in", _("is none of")
        GTE = "gte", _("is at least")
        LTE = "lte", _("is at most")
        EQ = "eq", _("equals")
        NE = "ne", _("differs from")
        EXISTS = "exists", _("is set")
        MISSING = "missing", _("is not set")

    segment = models.ForeignKey(
        Segment, on_delete=models.CASCADE, related_name="conditions", verbose_name=_("segment")
    )
    field = models.CharField(max_length=16, choices=Field.choices, verbose_name=_("field"))
    attribute = models.CharField(
        max_length=64,
        blank=True,
        help_text=_("For a member attribute: its name, e.g. channel."),
        verbose_name=_("attribute"),
    )
    operator = models.CharField(max_length=8, choices=Operator.choices, verbose_name=_("operator"))
    value = models.CharField(
        max_length=500,
        blank=True,
        help_text=_("Codes or values separated by commas for “is one of”; a date as YYYY-MM-DD."),
        verbose_name=_("value"),
    )

    class Meta:
        verbose_name = _("condition")
        verbose_name_plural = _("conditions")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.field} {self.operator} {self.value}"
