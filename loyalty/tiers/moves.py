"""Tiers: upgrade at once when growth crosses a threshold, downgrade only at the periodic review
after the tier's grace period, never below an operator's lock. Every change is a TierChange."""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Sum

from loyalty.models import Currency, LedgerEntry, MemberStanding, Tier, TierChange
from loyalty.outbox import webhook_emit
from loyalty.periods import calendar_year_start, rolling_window_start
from loyalty.persistence.unit_of_work import UnitOfWork
from loyalty.program.compiled import CompiledProgram, CompiledTier


@dataclass(frozen=True)
class TierMove:
    from_tier: CompiledTier | None
    to_tier: CompiledTier | None
    reason: str

    def as_dict(self) -> dict:
        return {
            "from": self.from_tier.code if self.from_tier else None,
            "to": self.to_tier.code if self.to_tier else None,
            "reason": str(self.reason),
        }


class GrowthWindows:
    """Qualifying growth of one member per window kind, each summed at most once."""

    def __init__(
        self,
        work: UnitOfWork | None,
        standing: MemberStanding,
        at: datetime,
        pending_growth: Sequence[tuple[datetime, int]] = (),
    ) -> None:
        """``work``: the unit of work the growth is posted in; None to read the ledger alone
        (the read side: the member's summary)."""
        self.work = work
        self.standing = standing
        self.at = at
        # Growth being credited in this transaction and not yet in the ledger.
        self.pending_growth = pending_growth
        self._sums: dict[tuple, int] = {}

    def for_tier(self, tier: CompiledTier) -> int:
        if tier.window == Tier.Window.LIFETIME:
            return self.standing.growth + sum(amount for _, amount in self.pending_growth)
        if tier.window == Tier.Window.ROLLING_DAYS:
            start = rolling_window_start(tier.window_days or 1, self.at)
        else:
            start = calendar_year_start(self.at)
        key = (tier.window, start)
        if key not in self._sums:
            if self.work is not None:
                self._sums[key] = self.work.growth_since(self.standing.pk, start)
            else:
                total = LedgerEntry.objects.filter(
                    member_id=self.standing.pk, currency=Currency.GROWTH, effective_at__gte=start
                ).aggregate(total=Sum("amount"))["total"]
                self._sums[key] = total or 0
        pending = sum(
            amount for effective_at, amount in self.pending_growth if effective_at >= start
        )
        return self._sums[key] + pending


def move_tier(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    program: CompiledProgram,
    to_tier: CompiledTier | None,
    reason: str,
    qualifying: int,
    at: datetime,
    operator=None,
    note: str = "",
) -> TierMove:
    """Put the member in ``to_tier`` and keep the change in their tier history (and tell the
    host app). Precondition: caller holds the lock. Badges due for the new tier are the
    caller's next step (the event pipeline, or ``engine.tier_review``)."""
    from_tier = program.tier(standing.tier_id)
    standing.tier_id = to_tier.id if to_tier else None
    standing.tier_since = at
    standing.grace_until = None
    change = TierChange(
        member_id=standing.pk,
        from_tier_id=from_tier.id if from_tier else None,
        to_tier_id=standing.tier_id,
        reason=reason,
        qualifying_growth=qualifying,
        operator=operator,
        note=note,
    )
    work.tier_moved(standing, change)  # the flush writes the standing's tier and the change
    webhook_emit(
        work=work,
        type="member.tier_changed",
        member_id=standing.pk,
        data={
            "member": work.external_id(standing.pk),
            "from": from_tier.code if from_tier else None,
            "to": to_tier.code if to_tier else None,
            "reason": str(reason),
            "qualifying_growth": qualifying,
        },
    )
    return TierMove(from_tier=from_tier, to_tier=to_tier, reason=reason)


def tier_upgrade_if_qualified(
    *,
    work: UnitOfWork,
    standing: MemberStanding,
    program: CompiledProgram,
    at: datetime,
    pending_growth: Sequence[tuple[datetime, int]] = (),
) -> TierMove | None:
    """Raise the member to the highest tier their growth qualifies for, at once; a member back
    above their own tier's threshold leaves grace. ``pending_growth`` is growth this
    transaction credits but has not posted yet. Precondition: caller holds the lock."""
    windows = GrowthWindows(work, standing, at, pending_growth)
    for tier in reversed(program.tiers_above(standing.tier_id)):
        qualifying = windows.for_tier(tier)
        if qualifying >= tier.growth_threshold:
            return move_tier(
                work=work,
                standing=standing,
                program=program,
                to_tier=tier,
                reason=TierChange.Reason.UPGRADE,
                qualifying=qualifying,
                at=at,
            )
    current = program.tier(standing.tier_id)
    if standing.grace_until and current and windows.for_tier(current) >= current.growth_threshold:
        standing.grace_until = None
        work.tier_moved(standing)
    return None


def tier_review_member(
    *, work: UnitOfWork, standing: MemberStanding, program: CompiledProgram, at: datetime
) -> TierMove | None:
    """Review one member: below the tier's threshold starts the grace period; still below
    when it has passed lowers the tier to the highest one the member qualifies for, but not
    below a locked tier. Precondition: caller holds the lock."""
    current = program.tier(standing.tier_id)
    if current is None:
        return tier_upgrade_if_qualified(work=work, standing=standing, program=program, at=at)
    windows = GrowthWindows(work, standing, at)
    if windows.for_tier(current) >= current.growth_threshold:
        if standing.grace_until:
            standing.grace_until = None
            work.tier_moved(standing)
        return tier_upgrade_if_qualified(work=work, standing=standing, program=program, at=at)
    locked = program.tier(standing.locked_tier_id)
    if locked and locked.position >= current.position:
        return None
    if standing.grace_until is None:
        standing.grace_until = at + timedelta(days=current.grace_days)
        work.tier_moved(standing)
        if current.grace_days:
            return None
    if at < standing.grace_until:
        return None
    below = [tier for tier in program.tiers if tier.position < current.position]
    target = next(
        (tier for tier in reversed(below) if windows.for_tier(tier) >= tier.growth_threshold), None
    )
    if locked and (target is None or target.position < locked.position):
        target = locked
    return move_tier(
        work=work,
        standing=standing,
        program=program,
        to_tier=target,
        reason=TierChange.Reason.REVIEW,
        qualifying=windows.for_tier(target) if target else 0,
        at=at,
    )
