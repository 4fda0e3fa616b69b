"""Read-side functions serving the API and the admin."""

from typing import Any

from django.db.models import QuerySet
from django.utils import timezone

from accounts.models import Member
from loyalty.models import LedgerEntry, MemberStanding
from loyalty.services.points import points_expiring
from loyalty.services.program import compiled_program
from loyalty.services.tiers import GrowthWindows


def member_standing(member: Member) -> MemberStanding:
    """The member's standing, or an unsaved empty one for a member with no events yet."""
    return MemberStanding.objects.filter(pk=member.pk).first() or MemberStanding(member=member)


def member_summary(member: Member) -> dict[str, Any]:
    """Balances in their buckets, growth, tier with privileges, and the way to the next tier."""
    standing = member_standing(member)
    program = compiled_program()
    tier = program.tier(standing.tier_id)
    next_tier = program.next_tier(standing.tier_id)
    windows = GrowthWindows(standing, timezone.now())
    summary: dict[str, Any] = {
        "balances": {
            "points": {
                "spendable": standing.points,
                "pending": standing.points_pending,
                "lifetime_earned": standing.points_earned,
                "lifetime_spent": standing.points_spent,
                "lifetime_expired": standing.points_expired,
            },
            "growth": standing.growth,
        },
        "expiring": [
            {"expires_at": row["expires_at"], "points": row["points"]}
            for row in points_expiring(member=member)[:12]
        ],
        "tier": None,
        "next_tier": None,
    }
    if tier:
        summary["tier"] = {
            "code": tier.code,
            "name": tier.name,
            "since": standing.tier_since,
            "locked": standing.locked_tier_id is not None,
            "grace_until": standing.grace_until,
            "qualifying_growth": windows.for_tier(tier),
            "privileges": [
                {key: p[key] for key in ("code", "name", "kind", "params", "description")}
                for p in tier.privileges
            ],
        }
    if next_tier:
        qualifying = windows.for_tier(next_tier)
        summary["next_tier"] = {
            "code": next_tier.code,
            "name": next_tier.name,
            "growth_threshold": next_tier.growth_threshold,
            "window": next_tier.window,
            "qualifying_growth": qualifying,
            "growth_needed": max(next_tier.growth_threshold - qualifying, 0),
        }
    return summary


def member_ledger(member: Member) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(member=member).select_related("rule_version__rule")


AUDITED = ("Program", "Action", "EarningRule", "RuleCondition", "RuleCap", "Tier", "Privilege")


def program_changes(*, limit: int = 300) -> list[dict[str, Any]]:
    """The latest operator changes to the program across every audited model, newest first,
    each with who made it and the fields it changed (old → new)."""
    from loyalty import models

    records = []
    for name in AUDITED:
        history = getattr(models, name).history
        records.extend(history.select_related("history_user").order_by("-history_date")[:limit])
    records.sort(key=lambda r: r.history_date, reverse=True)
    changes = []
    for record in records[:limit]:
        fields = []
        if record.history_type == "~" and record.prev_record is not None:
            delta = record.diff_against(record.prev_record)
            fields = [{"field": c.field, "old": c.old, "new": c.new} for c in delta.changes]
        changes.append(
            {
                "when": record.history_date,
                "who": record.history_user,
                "what": f"{record.instance_type._meta.verbose_name} {record.instance}",
                "kind": {"+": "created", "~": "changed", "-": "deleted"}[record.history_type],
                "fields": fields,
            }
        )
    return changes
