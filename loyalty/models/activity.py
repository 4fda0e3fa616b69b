from django.db import models
from django.utils.translation import gettext_lazy as _

from loyalty.models.audit import operator_field


class ActivityState(models.TextChoices):
    NEW = "new", _("New")
    ACTIVE = "active", _("Active")
    SILENT = "silent", _("Silent")
    AT_RISK = "at_risk", _("At risk")
    CHURNED = "churned", _("Churned")
    RETURNED = "returned", _("Returned")


class KeyAction(models.Model):
    """What counts as a member being active: at least ``min_per_day`` of the action in a local
    day. Dated: the definition in force is the latest one whose ``effective_from`` has come."""

    action = models.ForeignKey(
        "loyalty.Action", on_delete=models.PROTECT, related_name="+", verbose_name=_("action")
    )
    min_per_day = models.PositiveIntegerField(default=1, verbose_name=_("min per day"))
    effective_from = models.DateTimeField(verbose_name=_("effective from"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    created_by = operator_field(_("created by"))

    class Meta:
        verbose_name = _("key action")
        verbose_name_plural = _("key actions")
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return f"{self.min_per_day}× {self.action} a day, from {self.effective_from:%Y-%m-%d}"


class MemberActivity(models.Model):
    """A member's activity state; changed only under the member's standing lock."""

    member = models.OneToOneField(
        "accounts.Member",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="activity",
        verbose_name=_("member"),
    )
    state = models.CharField(
        max_length=10,
        choices=ActivityState.choices,
        default=ActivityState.NEW,
        verbose_name=_("state"),
    )
    since = models.DateTimeField(verbose_name=_("since"))
    last_key_day = models.DateField(null=True, blank=True, verbose_name=_("last key day"))
    returned_on = models.DateField(null=True, blank=True, verbose_name=_("returned on"))
    key_day = models.DateField(
        null=True,
        blank=True,
        help_text=_("The local day key_count counts."),
        verbose_name=_("key day"),
    )
    key_count = models.PositiveIntegerField(default=0, verbose_name=_("key count"))

    class Meta:
        verbose_name = _("member activity")
        indexes = [models.Index(fields=["state", "last_key_day"], name="activity_state_idx")]
        verbose_name_plural = _("member activity")

    def __str__(self) -> str:
        return f"{self.member_id}: {self.state}"


class ActivityTransition(models.Model):
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.CASCADE,
        related_name="activity_transitions",
        verbose_name=_("member"),
    )
    from_state = models.CharField(
        max_length=10, choices=ActivityState.choices, verbose_name=_("from state")
    )
    to_state = models.CharField(
        max_length=10, choices=ActivityState.choices, verbose_name=_("to state")
    )
    at = models.DateTimeField(verbose_name=_("at"))

    class Meta:
        verbose_name = _("activity transition")
        verbose_name_plural = _("activity transitions")
        ordering = ["-id"]

    def __str__(self) -> str:
        return f"{self.member_id}: {self.from_state} → {self.to_state}"


class Gift(models.Model):
    """Welcome, return (win-back) and birthday gifts: growth, points and/or a badge."""

    class Kind(models.TextChoices):
        WELCOME = "welcome", _("Welcome (first event)")
        RETURN = "return", _("Return (a churned member comes back)")
        BIRTHDAY = "birthday", _("Birthday")

    kind = models.CharField(
        max_length=10, choices=Kind.choices, unique=True, verbose_name=_("kind")
    )
    points = models.PositiveIntegerField(default=0, verbose_name=_("points"))
    growth = models.PositiveIntegerField(default=0, verbose_name=_("growth"))
    badge = models.ForeignKey(
        "loyalty.Badge",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("badge"),
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))

    class Meta:
        verbose_name = _("gift")
        verbose_name_plural = _("gifts")

    def __str__(self) -> str:
        return self.get_kind_display()


class GiftGrant(models.Model):
    """A gift given: once per member and occasion (``occasion``: welcome, return:DATE,
    birthday:YEAR), enforced by a unique constraint."""

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="gifts", verbose_name=_("member")
    )
    kind = models.CharField(max_length=10, choices=Gift.Kind.choices, verbose_name=_("kind"))
    occasion = models.CharField(max_length=32, verbose_name=_("occasion"))
    points = models.PositiveIntegerField(default=0, verbose_name=_("points"))
    growth = models.PositiveIntegerField(default=0, verbose_name=_("growth"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("gift grant")
        verbose_name_plural = _("gift grants")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "kind", "occasion"], name="one_gift_per_occasion"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} gift ({self.occasion}) for {self.member_id}"


class ChurnRisk(models.Model):
    """A member flagged at risk because their key actions fell well below their own recent
    baseline (``loyalty.activity.decline``); removed when they recover."""

    member = models.OneToOneField(
        "accounts.Member",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="churn_risk",
        verbose_name=_("member"),
    )
    indicator = models.CharField(max_length=32, verbose_name=_("indicator"))
    baseline = models.DecimalField(
        max_digits=10, decimal_places=2, help_text=_("A week, before."), verbose_name=_("baseline")
    )
    recent = models.DecimalField(
        max_digits=10, decimal_places=2, help_text=_("A week, lately."), verbose_name=_("recent")
    )
    flagged_at = models.DateTimeField(verbose_name=_("flagged at"))

    class Meta:
        verbose_name = _("churn risk")
        verbose_name_plural = _("churn risks")

    def __str__(self) -> str:
        return f"{self.member_id}: {self.indicator} {self.baseline} → {self.recent}"
