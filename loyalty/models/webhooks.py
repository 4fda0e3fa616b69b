import secrets
import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _


def new_webhook_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


class WebhookEndpoint(models.Model):
    """A receiver of the host app: signed deliveries of the chosen event types."""

    name = models.CharField(max_length=100, verbose_name=_("name"))
    url = models.URLField(max_length=500, verbose_name=_("url"))
    secret = models.CharField(
        max_length=100, default=new_webhook_secret, editable=False, verbose_name=_("secret")
    )
    event_types = models.JSONField(
        default=list, blank=True, help_text=_("Empty: every type."), verbose_name=_("event types")
    )
    is_active = models.BooleanField(default=True, verbose_name=_("is active"))
    consecutive_failures = models.PositiveIntegerField(
        default=0, editable=False, verbose_name=_("consecutive failures")
    )
    disabled_reason = models.CharField(
        max_length=200, blank=True, editable=False, verbose_name=_("disabled reason")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("webhook endpoint")
        verbose_name_plural = _("webhook endpoints")

    def __str__(self) -> str:
        return self.name

    def wants(self, event_type: str) -> bool:
        return self.is_active and (not self.event_types or event_type in self.event_types)


class WebhookEvent(models.Model):
    """The outbox: written in the same transaction as the change it reports."""

    id = models.UUIDField(
        primary_key=True, default=uuid.uuid4, editable=False, verbose_name=_("id")
    )
    type = models.CharField(max_length=40, db_index=True, verbose_name=_("type"))
    member = models.ForeignKey(
        "accounts.Member",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("member"),
    )
    data = models.JSONField(verbose_name=_("data"))
    created_at = models.DateTimeField(
        auto_now_add=True, db_index=True, verbose_name=_("created at")
    )

    class Meta:
        verbose_name = _("webhook event")
        verbose_name_plural = _("webhook events")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.type} {self.id}"

    def envelope(self) -> dict:
        return {
            "id": str(self.id),
            "type": self.type,
            "created_at": self.created_at.isoformat(),
            "data": self.data,
        }


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")

    event = models.ForeignKey(
        WebhookEvent, on_delete=models.CASCADE, related_name="deliveries", verbose_name=_("event")
    )
    endpoint = models.ForeignKey(
        WebhookEndpoint,
        on_delete=models.CASCADE,
        related_name="deliveries",
        verbose_name=_("endpoint"),
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.PENDING, verbose_name=_("status")
    )
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))
    next_attempt_at = models.DateTimeField(null=True, blank=True, verbose_name=_("next attempt at"))
    last_status_code = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("last status code")
    )
    last_error = models.CharField(max_length=300, blank=True, verbose_name=_("last error"))
    delivered_at = models.DateTimeField(null=True, blank=True, verbose_name=_("delivered at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("webhook delivery")
        ordering = ["-id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                name="delivery_due_idx",
                condition=models.Q(status="pending"),
            )
        ]
        verbose_name_plural = _("webhook deliveries")

    def __str__(self) -> str:
        return f"{self.event} → {self.endpoint} ({self.status})"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.CASCADE, related_name="log", verbose_name=_("delivery")
    )
    at = models.DateTimeField(auto_now_add=True, verbose_name=_("at"))
    status_code = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("status code"))
    error = models.CharField(max_length=300, blank=True, verbose_name=_("error"))
    duration_ms = models.PositiveIntegerField(default=0, verbose_name=_("duration ms"))

    class Meta:
        verbose_name = _("webhook attempt")
        verbose_name_plural = _("webhook attempts")
        ordering = ["id"]

    def __str__(self) -> str:
        return f"attempt at {self.at}: {self.status_code or self.error}"
