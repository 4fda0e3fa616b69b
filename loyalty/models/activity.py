from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


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

    action = models.ForeignKey("loyalty.Action", on_delete=models.PROTECT, related_name="+")
    min_per_day = models.PositiveIntegerField(default=1)
    effective_from = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        verbose_name = _("key action")
        verbose_name_plural = _("key actions")
        ordering = ["-effective_from"]

    def __str__(self) -> str:
        return f"{self.min_per_day}× {self.action} a day, from {self.effective_from:%Y-%m-%d}"


class MemberActivity(models.Model):
    """A member's activity state; changed only under the member's standing lock."""

    member = models.OneToOneField(
        "accounts.Member", primary_key=True, on_delete=models.CASCADE, related_name="activity"
    )
    state = models.CharField(
        max_length=10, choices=ActivityState.choices, default=ActivityState.NEW
    )
    since = models.DateTimeField()
    last_key_day = models.DateField(null=True, blank=True)
    returned_on = models.DateField(null=True, blank=True)
    key_day = models.DateField(
        null=True, blank=True, help_text=_("The local day key_count counts.")
    )
    key_count = models.PositiveIntegerField(default=0)

    class Meta:
        verbose_name = _("member activity")
        indexes = [models.Index(fields=["state", "last_key_day"], name="activity_state_idx")]
        verbose_name_plural = _("member activity")

    def __str__(self) -> str:
        return f"{self.member_id}: {self.state}"


class ActivityTransition(models.Model):
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.CASCADE, related_name="activity_transitions"
    )
    from_state = models.CharField(max_length=10, choices=ActivityState.choices)
    to_state = models.CharField(max_length=10, choices=ActivityState.choices)
    at = models.DateTimeField()

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

    kind = models.CharField(max_length=10, choices=Kind.choices, unique=True)
    points = models.PositiveIntegerField(default=0)
    growth = models.PositiveIntegerField(default=0)
    badge = models.ForeignKey(
        "loyalty.Badge", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        verbose_name = _("gift")
        verbose_name_plural = _("gifts")

    def __str__(self) -> str:
        return self.get_kind_display()


class GiftGrant(models.Model):
    """A gift given: once per member and occasion (``occasion``: welcome, return:DATE,
    birthday:YEAR), enforced by a unique constraint."""

    member = models.ForeignKey("accounts.Member", on_delete=models.PROTECT, related_name="gifts")
    kind = models.CharField(max_length=10, choices=Gift.Kind.choices)
    occasion = models.CharField(max_length=32)
    points = models.PositiveIntegerField(default=0)
    growth = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

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
