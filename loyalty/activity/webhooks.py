"""Webhooks the host app can trust: an outbox written with the change, signed deliveries,
retries with exponential back-off for about a day, a delivery log, replay.

``webhook_emit`` writes the event and one delivery per subscribed endpoint in the caller's
transaction (rolled back with it); after commit a Celery task delivers. If the broker is down,
the periodic ``loyalty.dispatch_webhooks`` finds the due deliveries: nothing is lost.
"""

import hashlib
import hmac
import json
import logging
import time
from datetime import timedelta
from typing import Any

import httpx
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from core import sql
from loyalty.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from loyalty.persistence import unit_of_work

log = logging.getLogger(__name__)

EVENT_TYPES = {
    "member.tier_changed": "A member's tier went up (at once) or down (at the review), or was locked.",
    "member.activity_changed": "A member's activity state changed (new, active, silent, at risk, churned, returned).",
    "badge.awarded": "A member earned a badge (not sent for quiet back-fills).",
    "quest.completed": "A member completed a quest.",
    "points.expiring_soon": "Some of a member's points expire within the program's notice period.",
    "points.expired": "Some of a member's points expired.",
    "gift.granted": "A welcome, return or birthday gift was granted.",
    "reward.redeemed": "A member redeemed a reward.",
    "redemption.cancelled": "A redemption was cancelled and its points refunded.",
}

# The fields of each event type's ``data``, as documented in docs/webhooks.md (a test holds
# the code, the documentation and what a receiver gets to this list).
PAYLOAD_FIELDS = {
    "member.tier_changed": ["member", "from", "to", "reason", "qualifying_growth"],
    "member.activity_changed": ["member", "from", "to", "at"],
    "badge.awarded": ["member", "badge", "name", "level", "sequence"],
    "quest.completed": ["member", "quest", "period_start", "reward"],
    "points.expiring_soon": ["member", "points", "expiring"],
    "points.expired": ["member", "points", "balance"],
    "gift.granted": ["member", "kind", "occasion", "points", "growth"],
    "reward.redeemed": ["member", "redemption_id", "reward", "points", "status", "coupon_code"],
    "redemption.cancelled": ["member", "redemption_id", "reward", "points_refunded"],
}

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


def webhook_emit(
    *, type: str, data: dict[str, Any], member_id: int | None = None
) -> WebhookEvent | None:
    """Write the event to the outbox, with a delivery per subscribed endpoint, in the caller's
    transaction; queue the deliveries after commit."""
    assert type in EVENT_TYPES, type
    work = unit_of_work.current()
    active = (
        work.memo("webhook_endpoints", _active_endpoints)
        if work is not None
        else _active_endpoints()
    )
    endpoints = [e for e in active if e.wants(type)]
    if not endpoints:
        return None
    event = WebhookEvent.objects.create(type=type, data=data, member_id=member_id)
    now = timezone.now()
    deliveries = WebhookDelivery.objects.bulk_create(
        [
            WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now)
            for endpoint in endpoints
        ]
    )
    ids = [d.pk for d in deliveries]
    transaction.on_commit(lambda: _queue(ids))
    return event


def _active_endpoints() -> list[WebhookEndpoint]:
    return sql.select(WebhookEndpoint, "t.is_active = %s", [True])


def _queue(delivery_ids: list[int]) -> None:
    from loyalty.tasks import deliver_webhook

    for delivery_id in delivery_ids:
        try:
            deliver_webhook.delay(delivery_id)
        except Exception:  # the broker is down: the periodic dispatcher will find it
            log.warning(
                "webhook delivery %s not queued; the dispatcher will retry",
                delivery_id,
                exc_info=True,
            )


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
    transaction.on_commit(lambda: _queue([replay.pk]))
    return replay
