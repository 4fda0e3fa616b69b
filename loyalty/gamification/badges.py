"""Badges: awarded when a member's progress on their criterion (``loyalty.gamification.criteria``)
reaches the threshold, with their bonus; revoked when a reversal takes it back; back-filled,
granted and revoked by operators. The caller holds the member's standing lock."""

import secrets
from datetime import datetime

from django.utils import timezone

from loyalty.gamification.bonus import grant_bonus
from loyalty.gamification.criteria import Touched, awards_due, badge_progress, criterion_of
from loyalty.ledger.session import member_session
from loyalty.models import (
    Badge,
    BadgeAward,
    BadgeShare,
    MemberStanding,
    SourceType,
)
from loyalty.outbox import webhook_emit
from loyalty.persistence.queries import badge_holdings_of, member_ids_in_chunks
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.program.compiled import CompiledProgram, compiled_program
from loyalty.tiers.moves import tier_upgrade_if_qualified


def badges_evaluate(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    program: CompiledProgram,
    touched: Touched,
    backfilled: bool = False,
    at: datetime | None = None,
) -> list[BadgeAward]:
    """Award every active badge the member now qualifies for among those ``touched`` affects
    (bonuses counting from ``at``, default now)."""
    badges = [b for b in program.badges if criterion_of(b).listens(b, touched)]
    awarded = []
    for badge in badges:
        progress = badge_progress(badge, work=work, standing=standing, program=program)
        held = _held(work, standing.pk, badge)["held"]
        for _ in range(awards_due(badge, progress) - held):
            awarded.append(
                badge_award(work=work, standing=standing, badge=badge, backfilled=backfilled, at=at)
            )
    return awarded


def badge_award(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    badge: Badge,
    operator=None,
    backfilled: bool = False,
    at: datetime | None = None,
) -> BadgeAward:
    """Award the badge once more, with its bonus as ledger entries whose source is the award,
    counting from ``at`` (the event that earned it; default now)."""
    held = _held(work, standing.pk, badge)
    award = BadgeAward(
        member_id=standing.pk,
        badge=badge,
        sequence=held["last"] + 1,
        backfilled=backfilled,
        operator=operator if getattr(operator, "pk", None) else None,
    )
    work.award(award)  # written with the flush, before the bonus's ledger entries
    held["held"] += 1
    held["last"] = award.sequence
    if not backfilled:  # a back-fill awards quietly: no flood of notifications
        webhook_emit(
            work=work,
            type="badge.awarded",
            member_id=standing.pk,
            data={
                "member": work.external_id(standing.pk),
                "badge": badge.code,
                "name": badge.name,
                "level": badge.level,
                "sequence": award.sequence,
            },
        )
    grant_bonus(
        work,
        standing,
        SourceType.BADGE,
        award,
        badge.code,
        f"Badge {badge.code}",
        badge.bonus_growth,
        badge.bonus_points,
        at=at,
    )
    return award


def _held(work: UnitOfWork, member_id: int, badge: Badge) -> dict[str, int]:
    """The member's awards of the badge not revoked (``held``) and the last sequence given
    (``last``): read once per unit of work for all its members."""
    rows = work.memo("badge_awards", lambda: badge_holdings_of(work.member_ids))
    return rows.setdefault((member_id, badge.pk), {"held": 0, "last": 0})


def badges_revoke_unearned(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    program: CompiledProgram,
    touched: Touched,
    reason: str,
) -> list[BadgeAward]:
    """Revoke, newest first, the awards of badges set to ``revoke_on_reversal`` that the
    member no longer qualifies for. Bonuses already given stay."""
    revoked = []
    for badge in program.badges:
        if not badge.revoke_on_reversal or not criterion_of(badge).listens(badge, touched):
            continue
        progress = badge_progress(badge, work=work, standing=standing, program=program)
        held = list(
            BadgeAward.objects.filter(
                member_id=standing.pk, badge=badge, revoked_at__isnull=True
            ).order_by("-sequence")
        )
        for award in held[: max(len(held) - awards_due(badge, progress), 0)]:
            award.revoked_at, award.revoke_reason = timezone.now(), reason
            award.save(update_fields=["revoked_at", "revoke_reason"])
            revoked.append(award)
    return revoked


def badges_on_tier_change(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    program: CompiledProgram,
    at: datetime | None = None,
) -> list[BadgeAward]:
    """The member's tier moved outside an event (an operator's growth adjustment or lock, the
    review): award the tier and growth badges now due. A bonus that lifts the tier again is
    followed until nothing more is due. Precondition: caller holds the lock."""
    awards: list[BadgeAward] = []
    while True:
        growth_before = standing.growth
        awarded = badges_evaluate(
            work=work,
            standing=standing,
            program=program,
            touched=Touched(tier=True, growth=True),
            at=at,
        )
        awards += awarded
        if not awarded or standing.growth == growth_before:
            return awards
        if not tier_upgrade_if_qualified(
            work=work, standing=standing, program=program, at=timezone.now()
        ):
            return awards


def badge_backfill(*, badge: Badge, chunk_size: int = 500) -> int:
    """Award a new or changed badge to every member who already qualifies, quietly
    (``backfilled``: no notification), one member per transaction, in chunks. Returns awards."""
    if not badge.is_active or badge.criterion == Badge.Criterion.MANUAL:
        return 0
    program = compiled_program()
    awarded = 0
    for ids in member_ids_in_chunks(criterion_of(badge).candidates(badge), chunk_size):
        for member_id in ids:
            with member_session(member_id) as session:
                standing, work = session.standing, session.work
                progress = badge_progress(badge, work=work, standing=standing, program=program)
                held = BadgeAward.objects.filter(
                    member_id=member_id, badge=badge, revoked_at__isnull=True
                ).count()
                for _ in range(awards_due(badge, progress) - held):
                    badge_award(work=work, standing=standing, badge=badge, backfilled=True)
                    awarded += 1
    return awarded


def badge_grant(*, member_id: int, badge: Badge, operator=None) -> BadgeAward:
    """Grant a badge by hand (any criterion)."""
    with member_session(member_id) as session:
        standing, work = session.standing, session.work
        return badge_award(work=work, standing=standing, badge=badge, operator=operator)


def badge_revoke(*, award: BadgeAward, reason: str = "revoked by an operator") -> BadgeAward:
    if award.revoked_at is None:
        award.revoked_at, award.revoke_reason = timezone.now(), reason
        award.save(update_fields=["revoked_at", "revoke_reason"])
    return award


# --- Sharing ----------------------------------------------------------------------------------


def badge_share(*, member_id: int, badge_code: str) -> BadgeShare | None:
    """Share a badge the member holds (a public page; the same one if shared before); None if
    they do not hold it."""
    award = (
        BadgeAward.objects.filter(
            member_id=member_id, badge__code=badge_code, revoked_at__isnull=True
        )
        .select_related("badge")
        .first()
    )
    if award is None:
        return None
    share, _created = BadgeShare.objects.get_or_create(
        member_id=member_id,
        badge=award.badge,
        defaults={"slug": secrets.token_urlsafe(16)},
    )
    return share


def badge_unshare(*, member_id: int, badge_code: str) -> None:
    BadgeShare.objects.filter(member_id=member_id, badge__code=badge_code).delete()


def badge_shared(slug: str) -> BadgeShare | None:
    """A shared badge, while the member still holds it."""
    share = BadgeShare.objects.filter(slug=slug).select_related("badge", "member").first()
    if (
        share is None
        or not BadgeAward.objects.filter(
            member_id=share.member_id, badge_id=share.badge_id, revoked_at__isnull=True
        ).exists()
    ):
        return None
    return share
