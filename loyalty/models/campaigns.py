from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from loyalty.models.audit import operator_field, operator_of


class Campaign(models.Model):
    """An operator's action on a segment: grant points, growth or a reward, send an e-mail, or
    ask the host app to push a message (the ``campaign.message`` webhook); now or on a
    schedule."""

    class Kind(models.TextChoices):
        POINTS = "points", _("Grant points")
        GROWTH = "growth", _("Grant growth")
        REWARD = "reward", _("Grant a reward")
        EMAIL = "email", _("Send an e-mail")
        MESSAGE = "message", _("Ask the host app to send a message (webhook)")

    class Repeat(models.TextChoices):
        ONCE = "once", _("Once")
        DAILY = "daily", _("Every day")
        WEEKLY = "weekly", _("Every week")

    code = models.SlugField(max_length=64, unique=True, verbose_name=_("code"))
    name = models.CharField(max_length=100, verbose_name=_("name"))
    segment = models.ForeignKey(
        "loyalty.Segment",
        on_delete=models.PROTECT,
        related_name="campaigns",
        verbose_name=_("segment"),
    )
    kind = models.CharField(max_length=8, choices=Kind.choices, verbose_name=_("kind"))
    amount = models.PositiveIntegerField(
        default=0, help_text=_("Points or growth granted to each member."), verbose_name=_("amount")
    )
    reward = models.CharField(
        max_length=64,
        blank=True,
        help_text=_(
            "For a reward grant: the reward's code in the catalog. It is given at no cost, "
            "under the reward's own rules (availability, stock, limits)."
        ),
        verbose_name=_("reward"),
    )
    subject = models.CharField(max_length=200, blank=True, verbose_name=_("subject"))
    body = models.TextField(
        blank=True,
        help_text=_(
            "The e-mail's text, or the message handed to the host app. {{ name }} and "
            "{{ points }} stand for the member's name and points balance."
        ),
        verbose_name=_("body"),
    )
    starts_at = models.DateTimeField(verbose_name=_("starts at"))
    repeat = models.CharField(
        max_length=6, choices=Repeat.choices, default=Repeat.ONCE, verbose_name=_("repeat")
    )
    ends_at = models.DateTimeField(null=True, blank=True, verbose_name=_("ends at"))
    holdout_percent = models.PositiveSmallIntegerField(
        default=0,
        help_text=_("Members kept out at random, to measure what the campaign really changed."),
        verbose_name=_("holdout percent"),
    )
    budget = models.PositiveBigIntegerField(
        null=True,
        blank=True,
        help_text=_(
            "Points, growth or rewards the campaign may grant in all, across its runs; empty: "
            "no limit."
        ),
        verbose_name=_("budget"),
    )
    spent = models.PositiveBigIntegerField(default=0, editable=False, verbose_name=_("spent"))
    include_active = models.BooleanField(
        default=False,
        help_text=_(
            "Messages and e-mails reach active members too (they are left alone otherwise)."
        ),
        verbose_name=_("include active members"),
    )
    return_days = models.PositiveSmallIntegerField(
        default=7,
        help_text=_(
            "A reached member has returned when they do the key action within this many days."
        ),
        verbose_name=_("return days"),
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    created_by = operator_field(_("created by"))

    history = HistoricalRecords(get_user=operator_of, excluded_fields=["spent"])

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(budget__isnull=True) | models.Q(spent__lte=models.F("budget")),
                name="campaign_within_budget",
            ),
            models.CheckConstraint(
                condition=models.Q(holdout_percent__lte=90), name="campaign_holdout_at_most_90"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def grants(self) -> bool:
        return self.kind in (self.Kind.POINTS, self.Kind.GROWTH, self.Kind.REWARD)

    @property
    def unit_cost(self) -> int:
        """What one member's grant takes from the budget: the amount, or one reward."""
        return 1 if self.kind == self.Kind.REWARD else self.amount


class CampaignRun(models.Model):
    """One run of a campaign, for one slot of its schedule: its audience, snapshotted when it
    starts, and what each member got."""

    class Status(models.TextChoices):
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")

    campaign = models.ForeignKey(
        Campaign, on_delete=models.CASCADE, related_name="runs", verbose_name=_("campaign")
    )
    scheduled_for = models.DateTimeField(verbose_name=_("scheduled for"))
    status = models.CharField(
        max_length=8, choices=Status.choices, default=Status.RUNNING, verbose_name=_("status")
    )
    audience = models.PositiveIntegerField(default=0, verbose_name=_("audience"))
    started_at = models.DateTimeField(auto_now_add=True, verbose_name=_("started at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name = _("campaign run")
        verbose_name_plural = _("campaign runs")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "scheduled_for"], name="one_run_per_slot")
        ]

    def __str__(self) -> str:
        return f"{self.campaign} at {self.scheduled_for:%Y-%m-%d %H:%M}"


class CampaignTarget(models.Model):
    """A member of a run's audience and what they got; the contact log the frequency limit
    counts."""

    class Outcome(models.TextChoices):
        PENDING = "pending", _("Pending")
        GRANTED = "granted", _("Granted")
        SENT = "sent", _("Sent")
        HOLDOUT = "holdout", _("Held out")
        OVER_BUDGET = "over_budget", _("Budget spent")
        TOO_OFTEN = "too_often", _("Contacted enough this week")
        ACTIVE = "active", _("Active: left alone")
        NO_EMAIL = "no_email", _("No e-mail address")
        REFUSED = "refused", _("Refused by the reward's rules")
        FAILED = "failed", _("Failed")

    run = models.ForeignKey(
        CampaignRun, on_delete=models.CASCADE, related_name="targets", verbose_name=_("run")
    )
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.CASCADE, related_name="+", verbose_name=_("member")
    )
    outcome = models.CharField(
        max_length=12, choices=Outcome.choices, default=Outcome.PENDING, verbose_name=_("outcome")
    )
    amount = models.PositiveIntegerField(default=0, verbose_name=_("amount"))
    webhook_event = models.ForeignKey(
        "loyalty.WebhookEvent",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("webhook event"),
    )
    detail = models.CharField(
        max_length=64,
        blank=True,
        help_text=_("Why a grant was refused or failed: the error code."),
        verbose_name=_("detail"),
    )
    at = models.DateTimeField(null=True, blank=True, verbose_name=_("at"))

    class Meta:
        verbose_name = _("campaign target")
        verbose_name_plural = _("campaign targets")
        constraints = [
            models.UniqueConstraint(fields=["run", "member"], name="one_target_per_run_member")
        ]
        indexes = [
            # The contact-frequency limit: a member's messages sent lately.
            models.Index(
                fields=["member", "at"],
                name="campaign_contact_idx",
                condition=models.Q(outcome="sent"),
            ),
            models.Index(fields=["run", "outcome"], name="campaign_target_outcome_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}: {self.member_id} {self.outcome}"
