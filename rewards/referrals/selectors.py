"""Read side of referrals: a member's code and counts, their invitees, the tree under a member,
the top inviters."""

from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet

from accounts.models import Member
from rewards.referrals.codes import invite_code_for, invite_link
from rewards.referrals.models import InviterTally, Referral
from rewards.referrals.program import ReferralRules, referral_rules


@dataclass(frozen=True)
class ReferralSummary:
    active: bool
    code: str
    link: str | None
    invited_by: Referral | None
    joined: int
    qualified: int
    pending: int
    rules: ReferralRules  # the settings read for it (how a friend qualifies)


def referral_summary(*, member: Member) -> ReferralSummary:
    """The member's invite code (made on first ask), link, who invited them and their counts."""
    rules = referral_rules()
    code = invite_code_for(member=member).code
    tally = InviterTally.objects.filter(member=member).first()
    pending = Referral.objects.filter(
        inviter=member, state__in=(Referral.State.JOINED, Referral.State.HELD)
    ).count()
    return ReferralSummary(
        active=rules.is_active,
        code=code,
        link=invite_link(code, rules),
        invited_by=Referral.objects.filter(invitee=member).select_related("inviter").first(),
        joined=tally.joined if tally else 0,
        qualified=tally.qualified if tally else 0,
        pending=pending,
        rules=rules,
    )


def masked_name(name: str) -> str:
    """A friend's name as another member sees it: the first letter, the rest hidden."""
    name = name.strip()
    return f"{name[0]}**" if name else "**"


def invitees_of(*, member: Member) -> QuerySet[Referral]:
    """The members this one invited, newest first."""
    return (
        Referral.objects.filter(inviter=member)
        .select_related("invitee", "inviter")
        .order_by("-joined_at", "-id")
    )


def top_inviters(*, limit: int = 50) -> QuerySet[InviterTally]:
    return (
        InviterTally.objects.filter(joined__gt=0)
        .select_related("member")
        .order_by("-qualified", "-joined", "member_id")[:limit]
    )


# How deep the tree page goes under a member, and how wide at each level.
TREE_DEPTH = 4
TREE_WIDTH = 200


def referral_tree(*, member: Member) -> dict[str, Any]:
    """The member, who invited them (up the chain) and who they invited (down a few levels):
    one query per level."""
    chain = []
    current = Referral.objects.filter(invitee=member).select_related("inviter").first()
    while current is not None and len(chain) < TREE_DEPTH:
        chain.append(current)
        current = (
            Referral.objects.filter(invitee_id=current.inviter_id).select_related("inviter").first()
        )
    root: dict[str, Any] = {"member": member, "referral": None, "children": []}
    level = {member.pk: root}
    for _depth in range(TREE_DEPTH):
        if not level:
            break
        below = list(
            Referral.objects.filter(inviter_id__in=list(level))
            .select_related("invitee")
            .order_by("joined_at", "id")[:TREE_WIDTH]
        )
        next_level = {}
        for referral in below:
            node = {"member": referral.invitee, "referral": referral, "children": []}
            level[referral.inviter_id]["children"].append(node)
            next_level[referral.invitee_id] = node
        level = next_level
    return {"chain": list(reversed(chain)), "root": root}


def referral_export(member: Member) -> dict[str, Any]:
    """A member's referral data, for their data export."""
    invited_by = Referral.objects.filter(invitee=member).select_related("inviter").first()
    return {
        "codes": list(
            member.referral_codes.order_by("id").values("code", "is_active", "created_at")
        ),
        "invited_by": invited_by.inviter.external_id if invited_by else None,
        "invited": list(
            Referral.objects.filter(inviter=member)
            .order_by("id")
            .values("id", "invitee__external_id", "state", "joined_at", "qualified_at")
        ),
    }
