"""The console's figures: daily aggregates kept by the insight job (``loyalty.insight``), never
written by the event flow. Each table can be rebuilt from the records it summarises
(``manage.py insight_rebuild``); the job keeps them current a day at a time."""

from django.db import models
from django.utils.translation import gettext_lazy as _


class DailyFigure(models.Model):
    """One figure of one local day: ``metric`` names what is counted, ``key`` what it is broken
    down by (empty: the whole program), e.g. ``ledger.points.earn`` by ``rule:12``."""

    day = models.DateField(verbose_name=_("day"))
    metric = models.CharField(max_length=48, verbose_name=_("metric"))
    key = models.CharField(max_length=64, blank=True, default="", verbose_name=_("key"))
    value = models.BigIntegerField(verbose_name=_("value"))

    class Meta:
        verbose_name = _("daily figure")
        verbose_name_plural = _("daily figures")
        constraints = [
            models.UniqueConstraint(
                fields=["metric", "key", "day"], name="one_figure_per_metric_key_day"
            )
        ]
        indexes = [models.Index(fields=["day"], name="figure_day_idx")]

    def __str__(self) -> str:
        return f"{self.day} {self.metric}[{self.key}] = {self.value}"


class KeyActiveDay(models.Model):
    """A local day on which a member did the key action (as often as it asks), with the
    member's join day and how far from it the day lies (in days, calendar weeks and months),
    which the cohorts count by."""

    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        verbose_name=_("member"),
    )
    day = models.DateField(verbose_name=_("day"))
    joined = models.DateField(verbose_name=_("joined"))
    day_offset = models.IntegerField(verbose_name=_("days after joining"))
    week_offset = models.IntegerField(verbose_name=_("weeks after joining"))
    month_offset = models.IntegerField(verbose_name=_("months after joining"))

    class Meta:
        verbose_name = _("key-action day")
        verbose_name_plural = _("key-action days")
        constraints = [
            models.UniqueConstraint(fields=["member", "day"], name="one_active_day_per_member")
        ]
        indexes = [models.Index(fields=["day"], name="active_day_idx")]

    def __str__(self) -> str:
        return f"{self.member_id} on {self.day}"


class MemberFirst(models.Model):
    """The first time a member did an action, earned a badge, completed a quest or reached a
    tier, and how many days after joining."""

    class Kind(models.TextChoices):
        ACTION = "action", _("Did the action")
        BADGE = "badge", _("Earned the badge")
        QUEST = "quest", _("Completed the quest")
        TIER = "tier", _("Reached the tier")

    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        verbose_name=_("member"),
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, verbose_name=_("kind"))
    code = models.CharField(max_length=64, verbose_name=_("code"))
    first_at = models.DateTimeField(verbose_name=_("first at"))
    offset_days = models.IntegerField(verbose_name=_("days after joining"))

    class Meta:
        verbose_name = _("member's first time")
        verbose_name_plural = _("members' first times")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "kind", "code"], name="one_first_per_member_kind_code"
            )
        ]

    def __str__(self) -> str:
        return f"{self.member_id} {self.kind}:{self.code} at {self.first_at}"


class CohortCell(models.Model):
    """Of the members who joined in the period ``cohort`` (a day, a Monday-first week or a
    month), how many did the key action in the ``period``-th period after it. ``period`` -1
    holds the cohort's size."""

    class Grain(models.TextChoices):
        DAY = "day", _("Day")
        WEEK = "week", _("Week")
        MONTH = "month", _("Month")

    grain = models.CharField(max_length=5, choices=Grain.choices, verbose_name=_("grain"))
    cohort = models.DateField(verbose_name=_("cohort"))
    period = models.IntegerField(verbose_name=_("period"))
    members = models.PositiveIntegerField(verbose_name=_("members"))

    class Meta:
        verbose_name = _("cohort cell")
        verbose_name_plural = _("cohort cells")
        constraints = [
            models.UniqueConstraint(
                fields=["grain", "cohort", "period"], name="one_cell_per_cohort_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.grain} {self.cohort} +{self.period}: {self.members}"


class IndicatorCell(models.Model):
    """Of the members who joined on ``joined`` and whose outcome is known, how many churned (or
    stayed) and had a feature within their first ``within_days`` days. The feature ``kind``
    ``""`` counts all of them (the base)."""

    joined = models.DateField(verbose_name=_("joined"))
    within_days = models.PositiveSmallIntegerField(verbose_name=_("within days"))
    kind = models.CharField(max_length=12, blank=True, verbose_name=_("kind"))
    code = models.CharField(max_length=120, blank=True, verbose_name=_("code"))
    churned = models.BooleanField(verbose_name=_("churned"))
    members = models.PositiveIntegerField(verbose_name=_("members"))

    class Meta:
        verbose_name = _("indicator cell")
        verbose_name_plural = _("indicator cells")
        indexes = [models.Index(fields=["within_days", "joined"], name="indicator_joined_idx")]

    def __str__(self) -> str:
        return f"{self.joined} ≤{self.within_days}d {self.kind}:{self.code}"


class Funnel(models.Model):
    """Steps an operator follows members through, each an action done for the first time;
    every funnel starts with joining."""

    name = models.CharField(max_length=100, unique=True, verbose_name=_("name"))
    steps = models.JSONField(
        default=list,
        help_text=_("The actions' codes, in order, e.g. check_in, purchase, invite_friend."),
        verbose_name=_("steps"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("funnel")
        verbose_name_plural = _("funnels")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FunnelDay(models.Model):
    """A funnel for the members who joined on ``joined``: how many reached each step (the first
    is joining), and the seconds each took from the step before."""

    funnel = models.ForeignKey(
        Funnel, on_delete=models.CASCADE, related_name="days", verbose_name=_("funnel")
    )
    joined = models.DateField(verbose_name=_("joined"))
    reached = models.JSONField(default=list, verbose_name=_("reached"))
    seconds = models.JSONField(default=list, verbose_name=_("seconds"))

    class Meta:
        verbose_name = _("funnel day")
        verbose_name_plural = _("funnel days")
        constraints = [models.UniqueConstraint(fields=["funnel", "joined"], name="one_funnel_day")]

    def __str__(self) -> str:
        return f"{self.funnel_id} {self.joined}"


class InsightState(models.Model):
    """What the insight job keeps between runs, by name: how far it has read each record
    (``cursor``), and summaries over all of history (``data``), e.g. the gaps between members'
    active days."""

    name = models.CharField(max_length=48, primary_key=True, verbose_name=_("name"))
    cursor = models.BigIntegerField(default=0, verbose_name=_("cursor"))
    data = models.JSONField(default=dict, blank=True, verbose_name=_("data"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("insight state")
        verbose_name_plural = _("insight states")
        permissions = [("view_console", _("Can see the operator console"))]

    def __str__(self) -> str:
        return self.name
