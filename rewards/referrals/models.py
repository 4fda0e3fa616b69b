"""Referral data: the program's referral settings, members' invite codes, referrals and the
identity signals (as keyed digests) that tell two accounts of one person apart."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from loyalty.models.audit import operator_of

# The system actions a qualified referral is credited through (rules decide how much).
INVITER_ACTION = "referral_qualified"
INVITEE_ACTION = "referred_welcome"


class ReferralProgram(models.Model):
    """The referral settings (one row). What the inviter and the newcomer get is not here: it is
    the earning rules of ``referral_qualified`` and ``referred_welcome``."""

    # What an operator sets (in the admin, in the program file), in the order shown.
    SETTINGS = [
        "is_active",
        "link_template",
        "attribution_days",
        "qualifying_action",
        "amount_attribute",
        "min_amount",
        "qualify_days",
        "signal_attributes",
        "burst_limit",
        "burst_hours",
    ]

    is_active = models.BooleanField(
        default=False,
        help_text=_("Accept invite codes and reward qualified referrals."),
        verbose_name=_("referrals on"),
    )
    attribution_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MinValueValidator(0), MaxValueValidator(365)],
        help_text=_("How many days after joining a member may still name who invited them."),
        verbose_name=_("attribution window (days)"),
    )
    qualifying_action = models.ForeignKey(
        "loyalty.Action",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text=_("The action that makes a referral count, e.g. a first purchase."),
        verbose_name=_("qualifying action"),
    )
    amount_attribute = models.CharField(
        max_length=64,
        default="amount",
        help_text=_("The event attribute compared with the minimum amount."),
        verbose_name=_("amount attribute"),
    )
    min_amount = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=0,
        validators=[MinValueValidator(0)],
        help_text=_("The qualifying action counts from this amount on (0: any)."),
        verbose_name=_("minimum amount"),
    )
    qualify_days = models.PositiveSmallIntegerField(
        default=30,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
        help_text=_(
            "The invited member must do the qualifying action within this many days of joining."
        ),
        verbose_name=_("qualifying window (days)"),
    )
    signal_attributes = models.JSONField(
        default=list,
        blank=True,
        help_text=_(
            "Identity signals the host app sends (member attributes or with the code), e.g. "
            '["device_id", "payment_fingerprint", "phone_hash"]: members who share one are held.'
        ),
        verbose_name=_("identity signals"),
    )
    burst_limit = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1)],
        help_text=_(
            "Hold a referral when its inviter already brought this many within the burst window."
        ),
        verbose_name=_("burst limit"),
    )
    burst_hours = models.PositiveSmallIntegerField(
        default=24,
        validators=[MinValueValidator(1), MaxValueValidator(720)],
        verbose_name=_("burst window (hours)"),
    )
    link_template = models.CharField(
        max_length=300,
        blank=True,
        help_text=_("The host app's sign-up link, with {code} where the invite code goes."),
        verbose_name=_("invite link"),
    )
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))
    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("referral settings")
        verbose_name_plural = _("referral settings")

    def __str__(self) -> str:
        return str(_("Referral settings"))

    def clean(self) -> None:
        problems = {}
        names = self.signal_attributes
        if not isinstance(names, list) or not all(
            isinstance(name, str) and 0 < len(name) <= 64 for name in names
        ):
            problems["signal_attributes"] = _('A list of attribute names, e.g. ["device_id"].')
        if self.link_template and "{code}" not in self.link_template:
            problems["link_template"] = _("Put {code} where the invite code goes.")
        if self.is_active and self.qualifying_action_id is None:
            problems["qualifying_action"] = _(
                "Referrals need a qualifying action to be switched on."
            )
        if problems:
            raise ValidationError(problems)


class ReferralCode(models.Model):
    """A member's invite code; regenerating retires the old one (its links stop working)."""

    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.CASCADE,
        related_name="referral_codes",
        verbose_name=_("member"),
    )
    code = models.CharField(max_length=16, unique=True, verbose_name=_("code"))
    is_active = models.BooleanField(default=True, verbose_name=_("in use"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    retired_at = models.DateTimeField(null=True, blank=True, verbose_name=_("retired at"))

    class Meta:
        verbose_name = _("invite code")
        verbose_name_plural = _("invite codes")
        constraints = [
            models.UniqueConstraint(
                fields=["member"],
                condition=models.Q(is_active=True),
                name="one_active_invite_code",
            )
        ]

    def __str__(self) -> str:
        return self.code


class Referral(models.Model):
    """One member invited by another: at most one per invited member."""

    class State(models.TextChoices):
        JOINED = "joined", _("joined, not yet qualified")
        HELD = "held", _("held for review")
        QUALIFIED = "qualified", _("qualified")
        REJECTED = "rejected", _("rejected")
        EXPIRED = "expired", _("expired unqualified")

    class HoldReason(models.TextChoices):
        NONE = "", _("none")
        SHARED_SIGNAL = "shared_signal", _("shares an identity signal")
        BURST = "burst", _("a burst from one inviter")
        REFUNDED = "qualifying_refunded", _("the qualifying order was refunded")

    inviter = models.ForeignKey(
        "accounts.Member",
        on_delete=models.CASCADE,
        related_name="referrals_made",
        verbose_name=_("inviter"),
    )
    invitee = models.OneToOneField(
        "accounts.Member",
        on_delete=models.CASCADE,
        related_name="referral",
        verbose_name=_("invited member"),
    )
    code = models.CharField(max_length=16, blank=True, verbose_name=_("code used"))
    state = models.CharField(
        max_length=12, choices=State.choices, default=State.JOINED, verbose_name=_("state")
    )
    hold_reason = models.CharField(
        max_length=24,
        choices=HoldReason.choices,
        blank=True,
        default="",
        verbose_name=_("held because"),
    )
    hold_details = models.JSONField(default=dict, blank=True, verbose_name=_("hold details"))
    joined_at = models.DateTimeField(verbose_name=_("attributed at"))
    qualify_by = models.DateTimeField(verbose_name=_("qualify by"))
    qualifying_event = models.ForeignKey(
        "loyalty.Event",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("qualifying event"),
    )
    qualified_at = models.DateTimeField(null=True, blank=True, verbose_name=_("qualified at"))
    friend_number = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text=_("The how-many-th qualified friend of the inviter this one is."),
        verbose_name=_("friend number"),
    )
    inviter_event = models.ForeignKey(
        "loyalty.Event",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("inviter's credit"),
    )
    invitee_event = models.ForeignKey(
        "loyalty.Event",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("invited member's credit"),
    )
    rewarded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("rewarded at"))
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("reviewed by"),
    )
    reviewed_at = models.DateTimeField(null=True, blank=True, verbose_name=_("reviewed at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("referral")
        verbose_name_plural = _("referrals")
        ordering = ["-joined_at", "-id"]
        indexes = [
            models.Index(fields=["inviter", "joined_at"], name="referral_inviter_joined"),
            models.Index(fields=["state", "qualify_by"], name="referral_state_deadline"),
            models.Index(fields=["qualifying_event"], name="referral_qualifying_event"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(inviter=models.F("invitee")), name="no_self_referral"
            )
        ]

    def __str__(self) -> str:
        return f"{self.inviter_id} → {self.invitee_id}"


class InviterTally(models.Model):
    """An inviter's counts, kept as referrals move: the top inviters read them, and numbering
    qualified friends locks this row."""

    member = models.OneToOneField(
        "accounts.Member",
        primary_key=True,
        on_delete=models.CASCADE,
        related_name="inviter_tally",
        verbose_name=_("member"),
    )
    joined = models.PositiveIntegerField(default=0, verbose_name=_("friends joined"))
    qualified = models.PositiveIntegerField(default=0, verbose_name=_("friends qualified"))
    numbered = models.PositiveIntegerField(
        default=0, help_text=_("The last friend number given."), verbose_name=_("numbered")
    )

    class Meta:
        verbose_name = _("inviter")
        verbose_name_plural = _("top inviters")
        indexes = [models.Index(fields=["-qualified"], name="inviter_tally_qualified")]

    def __str__(self) -> str:
        return str(self.member)

    @classmethod
    def locked(cls, member) -> "InviterTally":
        """The member's tally (made if they have none), locked until the transaction ends:
        attributions and friend numbers of one inviter wait for each other here."""
        cls.objects.get_or_create(member=member)
        return cls.objects.select_for_update().get(member=member)


class ReferralSignal(models.Model):
    """An identity signal a member was seen with, as a keyed digest (the value is not kept)."""

    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.CASCADE,
        related_name="referral_signals",
        verbose_name=_("member"),
    )
    name = models.CharField(max_length=64, verbose_name=_("signal"))
    digest = models.CharField(max_length=64, verbose_name=_("digest"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("seen at"))

    class Meta:
        verbose_name = _("identity signal")
        verbose_name_plural = _("identity signals")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "name", "digest"], name="one_signal_per_member"
            )
        ]
        indexes = [models.Index(fields=["name", "digest"], name="referral_signal_digest")]

    def __str__(self) -> str:
        return f"{self.name} {self.digest[:12]}…"
