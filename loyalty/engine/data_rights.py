"""Members' data rights: export everything held about a member, erase their personal data
while the ledger and the totals stay whole.

Other apps add their own sections to the export with ``register_export_section`` (e.g. the
rewards app adds redemptions), and their own steps to the erasure with ``register_erase_step``
(e.g. the rewards app forgets a member's identity signals), so both stay complete as the
product grows.
"""

from collections.abc import Callable
from typing import Any

from django.db import transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from accounts.models import Member
from loyalty.models import (
    Adjustment,
    BadgeAward,
    Event,
    EventReversal,
    LedgerEntry,
    MemberErasure,
    MemberStreak,
    PointLot,
    QuestProgress,
    TierChange,
)
from loyalty.persistence.locks import lock_standing
from loyalty.selectors import member_summary

EXPORT_SECTIONS: dict[str, Callable[[Member], Any]] = {}


def register_export_section(name: str, build: Callable[[Member], Any]) -> None:
    EXPORT_SECTIONS[name] = build


ERASE_STEPS: dict[str, Callable[[Member], None]] = {}


def register_erase_step(name: str, erase: Callable[[Member], None]) -> None:
    """``erase(member)`` runs inside the erasure's transaction, before the member's host id is
    replaced."""
    ERASE_STEPS[name] = erase


def _rows(queryset, fields: list[str]) -> list[dict[str, Any]]:
    return list(queryset.order_by("id").values(*fields))


register_export_section(
    "events",
    lambda m: _rows(
        Event.objects.filter(member=m),
        [
            "id",
            "action_code",
            "occurred_at",
            "received_at",
            "attributes",
            "status",
            "reason",
            "growth",
            "points",
        ],
    ),
)
register_export_section(
    "ledger",
    lambda m: _rows(
        LedgerEntry.objects.filter(member=m),
        [
            "id",
            "currency",
            "kind",
            "amount",
            "pending",
            "source_type",
            "source_id",
            "event_id",
            "reason",
            "effective_at",
            "created_at",
        ],
    ),
)
register_export_section(
    "point_lots",
    lambda m: _rows(
        PointLot.objects.filter(member=m),
        ["id", "amount", "remaining", "pending", "activates_at", "expires_at"],
    ),
)
register_export_section(
    "tier_history",
    lambda m: _rows(
        TierChange.objects.filter(member=m),
        ["id", "from_tier__code", "to_tier__code", "reason", "note", "created_at"],
    ),
)
register_export_section(
    "adjustments",
    lambda m: _rows(
        Adjustment.objects.filter(member=m), ["id", "currency", "amount", "reason", "created_at"]
    ),
)
register_export_section(
    "reversals",
    lambda m: _rows(
        EventReversal.objects.filter(event__member=m),
        ["id", "event_id", "amount", "outcome", "created_at"],
    ),
)

register_export_section(
    "badges",
    lambda m: _rows(
        BadgeAward.objects.filter(member=m),
        ["id", "badge__code", "sequence", "awarded_at", "revoked_at"],
    ),
)
register_export_section(
    "quests",
    lambda m: _rows(
        QuestProgress.objects.filter(member=m),
        ["id", "quest__code", "period_start", "step_counts", "completed_at"],
    ),
)
register_export_section(
    "streaks",
    lambda m: _rows(
        MemberStreak.objects.filter(member=m),
        ["id", "streak__code", "current", "longest", "last_day"],
    ),
)


def member_export(*, member: Member) -> dict[str, Any]:
    """Everything held about the member, as JSON-ready data."""
    profile = model_to_dict(member, exclude=["user"])
    profile.update(
        joined_at=member.joined_at, created_at=member.created_at, updated_at=member.updated_at
    )
    return {
        "exported_at": timezone.now(),
        "member": profile,
        "standing": member_summary(member),
        **{name: build(member) for name, build in EXPORT_SECTIONS.items()},
    }


ERASED_PREFIX = "erased:"


@transaction.atomic
def member_erase(*, member: Member, operator=None) -> Member:
    """Erase the member's personal data: profile, the host app's id (freed for reuse), event
    attributes. Ledger entries, lots, balances and tier history stay as they are, so the
    program's books still add up. Safe to repeat."""
    lock_standing(member.pk)
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.external_id.startswith(ERASED_PREFIX):
        return member
    for erase in ERASE_STEPS.values():
        erase(member)
    member.external_id = f"{ERASED_PREFIX}{member.pk}"
    member.display_name = ""
    member.email = ""
    member.birthday = None
    member.attributes = {}
    member.user = None
    member.leaderboard_opt_out = True
    member.save()
    events = Event.objects.filter(member=member)
    events.update(attributes={})
    for event in events.only("pk", "outcome").iterator(chunk_size=500):
        if event.outcome.get("member") != member.external_id:
            Event.objects.filter(pk=event.pk).update(
                outcome={**event.outcome, "member": member.external_id}
            )
    MemberErasure.objects.create(
        member=member, operator=operator if getattr(operator, "pk", None) else None
    )
    return member
