"""Webhooks the host app can trust: an outbox written with the change, signed deliveries,
retries with exponential back-off for about a day, a delivery log, replay.

``loyalty.outbox.webhook_emit`` writes the event and one delivery per subscribed endpoint in the
caller's transaction (rolled back with it); after commit a Celery task delivers. If the broker is down,
the periodic ``loyalty.dispatch_webhooks`` finds the due deliveries: nothing is lost.
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta

import httpx
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from loyalty.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from loyalty.outbox import queue_deliveries

log = logging.getLogger(__name__)

# Seconds to wait before each retry: about a day in all, then the delivery is marked failed.
BACKOFF = [30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800, 28800]
DISABLE_AFTER_FAILURES = 25
TIMEOUT_SECONDS = 10
SIGNATURE_HEADER = "X-Loyalty-Signature"
TIMESTAMP_HEADER = "X-Loyalty-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=`` + hex HMAC-SHA256 of ``{timestamp}.{body}`` with the endpoint's secret."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"v1={digest}"


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance: int = 300
) -> bool:
    """What a receiver does: the signature matches and the timestamp is recent."""
    if abs(time.time() - int(timestamp)) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def webhook_deliver(*, delivery_id: int) -> WebhookDelivery:
    """One attempt: POST the signed envelope. 2xx succeeds; anything else schedules the next
    attempt, or fails the delivery after the last. An endpoint failing again and again is
    disabled and flagged. A delivery already done is left alone (at-least-once, not more)."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True)
            .select_related("event", "endpoint")
            .filter(pk=delivery_id, status=WebhookDelivery.Status.PENDING)
            .first()
        )
        if delivery is None:
            return WebhookDelivery.objects.get(pk=delivery_id)
        endpoint = delivery.endpoint
        body = json.dumps(delivery.event.envelope(), separators=(",", ":")).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "loyalty-engine-webhooks/1",
            "X-Loyalty-Event": delivery.event.type,
            "X-Loyalty-Delivery": str(delivery.pk),
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(endpoint.secret, timestamp, body),
        }
        started = time.monotonic()
        status_code, error = None, ""
        try:
            response = httpx.post(
                endpoint.url, content=body, headers=headers, timeout=TIMEOUT_SECONDS
            )
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        WebhookAttempt.objects.create(
            delivery=delivery,
            status_code=status_code,
            error=error,
            duration_ms=int((time.monotonic() - started) * 1000),
        )
        delivery.attempts += 1
        delivery.last_status_code, delivery.last_error = status_code, error
        if not error:
            delivery.status, delivery.delivered_at, delivery.next_attempt_at = (
                "succeeded",
                timezone.now(),
                None,
            )
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0)
        else:
            if delivery.attempts > len(BACKOFF):
                delivery.status, delivery.next_attempt_at = "failed", None
            else:
                delivery.next_attempt_at = timezone.now() + timedelta(
                    seconds=BACKOFF[delivery.attempts - 1]
                )
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
                consecutive_failures=F("consecutive_failures") + 1
            )
            WebhookEndpoint.objects.filter(
                pk=endpoint.pk, consecutive_failures__gte=DISABLE_AFTER_FAILURES, is_active=True
            ).update(
                is_active=False,
                disabled_reason=f"disabled after {DISABLE_AFTER_FAILURES} failures in a row",
            )
        delivery.save()
    return delivery


def webhooks_dispatch_due(*, limit: int = 500) -> int:
    """Deliver what is due (retries, and anything the broker lost). Returns attempts made."""
    due = list(
        WebhookDelivery.objects.filter(
            status=WebhookDelivery.Status.PENDING,
            next_attempt_at__lte=timezone.now(),
            endpoint__is_active=True,
        )
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )
    for delivery_id in due:
        webhook_deliver(delivery_id=delivery_id)
    return len(due)


def webhook_replay(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send an event again to the same endpoint, as a new delivery (the log keeps both)."""
    replay = WebhookDelivery.objects.create(
        event=delivery.event, endpoint=delivery.endpoint, next_attempt_at=timezone.now()
    )
    transaction.on_commit(lambda: queue_deliveries([replay.pk]))
    return replay
