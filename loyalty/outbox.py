"""The outbox: webhook events written in the caller's transaction, one delivery per subscribed
endpoint, queued for delivery after commit (``loyalty.activity.webhooks`` delivers them).

A leaf: every capability that announces something (tiers, badges, quests, points, activity,
redemptions) writes here, and nothing here imports them back.
"""

from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from core.tasks import queue_or_log
from loyalty.models import WebhookDelivery, WebhookEvent
from loyalty.persistence.queries import active_endpoints
from loyalty.persistence.unit_of_work import UnitOfWork

EVENT_TYPES = {
    "member.tier_changed": _(
        "A member's tier went up (at once) or down (at the review), or was locked."
    ),
    "member.activity_changed": _(
        "A member's activity state changed (new, active, silent, at risk, churned, returned)."
    ),
    "badge.awarded": _("A member earned a badge (not sent for quiet back-fills)."),
    "quest.completed": _("A member completed a quest."),
    "points.expiring_soon": _(
        "Some of a member's points expire within the program's notice period."
    ),
    "points.expired": _("Some of a member's points expired."),
    "gift.granted": _("A welcome, return or birthday gift was granted."),
    "reward.redeemed": _("A member redeemed a reward, or a campaign gave them one."),
    "redemption.cancelled": _("A redemption was cancelled and its points refunded."),
    "member.churn_risk": _(
        "A member's key actions fell well below their own recent weeks: at risk of churning."
    ),
    "campaign.message": _(
        "A campaign asks the host app to send a member a message (a push, an SMS, in-app)."
    ),
    "referral.joined": _(
        "A new member named who invited them: the referral is counted, or held for review."
    ),
    "referral.qualified": _(
        "An invited member did the qualifying action: both were credited through the rules."
    ),
    "referral.rejected": _(
        "A referral will not be rewarded: an operator rejected it, or it expired unqualified."
    ),
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
    "reward.redeemed": [
        "member",
        "redemption_id",
        "reward",
        "points",
        "status",
        "coupon_code",
        "gift",
    ],
    "redemption.cancelled": ["member", "redemption_id", "reward", "points_refunded"],
    "member.churn_risk": ["member", "indicator", "baseline", "recent", "at"],
    "campaign.message": ["member", "campaign", "run_id", "subject", "body"],
    "referral.joined": ["member", "inviter", "referral_id", "state", "hold_reason"],
    "referral.qualified": [
        "member",
        "inviter",
        "referral_id",
        "friend_number",
        "inviter_credited",
        "member_credited",
    ],
    "referral.rejected": ["member", "inviter", "referral_id", "reason"],
}


def webhook_emit(
    *, work: UnitOfWork | None, type: str, data: dict[str, Any], member_id: int | None = None
) -> WebhookEvent | None:
    """Write the event to the outbox, with a delivery per subscribed endpoint, in the caller's
    transaction; queue the deliveries after commit. The endpoints are read once per unit of
    work (each time without one: an operation outside the event flow)."""
    if type not in EVENT_TYPES:
        raise ValueError(f"Unknown webhook event type {type!r}.")
    active = work.memo("webhook_endpoints", active_endpoints) if work else active_endpoints()
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
    transaction.on_commit(lambda: queue_deliveries(ids))
    return event


def queue_deliveries(delivery_ids: list[int]) -> None:
    """Queue each delivery's first attempt (the periodic dispatcher finds any not queued)."""
    for delivery_id in delivery_ids:
        queue_or_log("loyalty.deliver_webhook", delivery_id)
