import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import idempotency_client


class Event(models.Model):
    """One occurrence reported by the host app, stored once with its outcome.

    The idempotency key is unique per API client; a retry finds this row and gets its outcome.
    """

    class Status(models.TextChoices):
        CREDITED = "credited", _("Credited")
        NOT_CREDITED = "not_credited", _("Nothing credited")

    class Reason(models.TextChoices):
        """Why an event, or one of its rules, credited nothing (stable codes of the API)."""

        UNKNOWN_ACTION = "unknown_action", _("Unknown action")
        RULE_INACTIVE = "rule_inactive", _("Rule switched off or outside its dates")
        NO_RULE = "no_rule", _("No rule for this action")
        CONDITION_NOT_MET = "condition_not_met", _("A condition was not met")
        CAP_REACHED = "cap_reached", _("Cap reached")
        COOLDOWN = "cooldown", _("Too soon after the last credit (cooldown)")
        INVALID_ATTRIBUTE = "invalid_attribute", _("Amount missing or unusable")
        STOPPED_BY_RULE = "stopped_by_rule", _("Stopped by a rule before it")
        NOTHING_TO_CREDIT = "nothing_to_credit", _("The rules credit nothing")
        BUDGET_SPENT = "budget_spent", _("The rule's total budget is spent")

    client = idempotency_client()
    idempotency_key = models.CharField(max_length=128, verbose_name=_("idempotency key"))
    request_hash = models.CharField(max_length=64, verbose_name=_("request hash"))
    # No index of its own: a composite index of the table (below) leads with it.
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.PROTECT,
        related_name="events",
        db_index=False,
        verbose_name=_("member"),
    )
    action = models.ForeignKey(
        "loyalty.Action",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="events",
        verbose_name=_("action"),
    )
    action_code = models.CharField(max_length=64, verbose_name=_("action code"))
    occurred_at = models.DateTimeField(verbose_name=_("occurred at"))
    received_at = models.DateTimeField(auto_now_add=True, verbose_name=_("received at"))
    attributes = models.JSONField(default=dict, blank=True, verbose_name=_("attributes"))
    status = models.CharField(max_length=16, choices=Status.choices, verbose_name=_("status"))
    reason = models.CharField(
        max_length=32,
        blank=True,
        choices=Reason.choices,
        help_text=_("Why nothing was credited."),
        verbose_name=_("reason"),
    )
    growth = models.BigIntegerField(default=0, verbose_name=_("growth"))
    points = models.BigIntegerField(default=0, verbose_name=_("points"))
    outcome = models.JSONField(default=dict, verbose_name=_("outcome"))

    class Meta:
        verbose_name = _("event")
        verbose_name_plural = _("events")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "idempotency_key"],
                name="one_event_per_idempotency_key",
                nulls_distinct=False,  # events recorded without a client share one key space
            )
        ]
        indexes = [
            # Serves retries where the unique constraint cannot (SQLite has no NULLS NOT DISTINCT).
            models.Index(fields=["idempotency_key"], name="event_key_idx"),
            models.Index(fields=["member", "-id"], name="event_member_idx"),
            models.Index(
                fields=["member", "action", "occurred_at"], name="event_member_action_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action_code} by {self.member_id} ({self.idempotency_key})"


class EventBatchJob(models.Model):
    """An asynchronous batch: accepted with 202, processed by a Celery task, read back by id."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("id")
    )
    client = models.ForeignKey(
        "accounts.ApiClient", on_delete=models.PROTECT, related_name="+", verbose_name=_("client")
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.QUEUED, verbose_name=_("status")
    )
    items = models.JSONField(help_text=_("The events as posted."), verbose_name=_("items"))
    results = models.JSONField(null=True, blank=True, verbose_name=_("results"))
    total = models.PositiveIntegerField(default=0, verbose_name=_("total"))
    succeeded = models.PositiveIntegerField(default=0, verbose_name=_("succeeded"))
    failed = models.PositiveIntegerField(default=0, verbose_name=_("failed"))
    error = models.TextField(blank=True, verbose_name=_("error"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished at"))

    class Meta:
        verbose_name_plural = _("event batch jobs")
        ordering = ["-created_at"]
        verbose_name = _("event batch job")

    def __str__(self) -> str:
        return f"batch {self.pk} ({self.status})"


class EventReversal(models.Model):
    """A full or partial reversal of an event (a refund, a cancelled order), stored once per
    idempotency key with what it took back."""

    event = models.ForeignKey(
        Event, on_delete=models.PROTECT, related_name="reversals", verbose_name=_("event")
    )
    client = idempotency_client()
    idempotency_key = models.CharField(max_length=128, verbose_name=_("idempotency key"))
    request_hash = models.CharField(max_length=64, verbose_name=_("request hash"))
    amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text=_("Partial: the refunded amount."),
        verbose_name=_("amount"),
    )
    fraction = models.DecimalField(
        max_digits=9,
        decimal_places=8,
        help_text=_("Share of the event reversed so far, this one included."),
        verbose_name=_("fraction"),
    )
    targets = models.JSONField(
        default=dict,
        help_text=_("Per rule version: the growth and points this reversal takes back."),
        verbose_name=_("targets"),
    )
    outcome = models.JSONField(default=dict, verbose_name=_("outcome"))
    shortfall = models.BigIntegerField(
        default=0,
        help_text=_("Spent points this reversal could not take back (recorded as owed)."),
        verbose_name=_("shortfall"),
    )
    shortfall_open = models.BigIntegerField(
        default=0,
        help_text=_("What of the shortfall later credits have not repaid yet."),
        verbose_name=_("shortfall open"),
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("event reversal")
        verbose_name_plural = _("event reversals")
        ordering = ["-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(
                    shortfall_open__gte=0, shortfall_open__lte=models.F("shortfall")
                ),
                name="reversal_shortfall_open_in_range",
            ),
            models.UniqueConstraint(
                fields=["client", "idempotency_key"],
                name="one_reversal_per_idempotency_key",
                nulls_distinct=False,
            ),
        ]
        indexes = [
            models.Index(fields=["idempotency_key"], name="reversal_key_idx"),
            # The reversals that fell short: the debts a credit repays (oldest first), and
            # what verify_ledger checks.
            models.Index(
                fields=["event", "id"],
                name="reversal_shortfall_idx",
                condition=models.Q(shortfall__gt=0),
            ),
        ]

    def __str__(self) -> str:
        return f"reversal {self.pk} of event {self.event_id}"
