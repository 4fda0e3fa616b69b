"""Who may redeem what, at which price: the catalog's rules, evaluated for one member."""

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_FLOOR, Decimal

from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import Member
from core import sql
from core.errors import BusinessRuleViolation
from loyalty.models import MemberStanding
from loyalty.periods import period_start, start_of_day
from loyalty.program.compiled import CompiledProgram, compiled_program
from loyalty.segments.filters import member_in_segment
from rewards.models import CouponCode, Redemption, Reward


class RedemptionRefused(BusinessRuleViolation):
    """Stable codes: not_available, segment_required, tier_required, limit_reached,
    out_of_stock, insufficient_points."""

    code = "redemption_refused"


@dataclass(frozen=True)
class Offer:
    """A reward as one member sees it."""

    reward: Reward
    price: int
    refusal: RedemptionRefused | None

    @property
    def can_redeem(self) -> bool:
        return self.refusal is None


def price_for(
    reward: Reward, program: CompiledProgram, tier_id: int | None, member: Member | None = None
) -> int:
    """The cost — the segment price for the members of the reward's price segment — after the
    member's tier discount (``reward_discount`` privilege, percent), rounded down in the
    member's favour, never below one point."""
    cost = reward.cost_points
    if (
        reward.price_segment_id is not None
        and reward.segment_price is not None
        and member is not None
        and member_in_segment(reward.price_segment_id, member)
    ):
        cost = reward.segment_price
    tier = program.tier(tier_id)
    percent = tier.privilege_param("reward_discount", "percent") if tier else None
    if not percent:
        return max(cost, 1)
    percent = min(max(percent, Decimal(0)), Decimal(100))
    price = (cost * (100 - percent) / 100).to_integral_value(rounding=ROUND_FLOOR)
    return max(int(price), 1)


def reward_get(code: str) -> tuple[Reward, set[int]] | None:
    """The reward with this code and the ids of the tiers it is kept for (``refusal_for``'s
    ``exclusive_tiers``), in one statement; None if there is none."""
    tiers = Reward.exclusive_tiers.through._meta.db_table
    rows = sql.fetch(
        f"SELECT {sql.columns(Reward, 't')}, "
        f"{sql.list_of('tier_id', f'{tiers} WHERE reward_id = t.id')} "
        f"FROM {Reward._meta.db_table} t WHERE t.code = %s",
        [code],
    )
    if not rows:
        return None
    return sql.rows_to(Reward, rows)[0], set(sql.listed(rows[0][-1]))


def _exclusive_tiers(reward: Reward) -> set[int]:
    """The ids of the tiers the reward is kept for (none: for everyone)."""
    through = Reward.exclusive_tiers.through
    return {
        tier_id
        for (tier_id,) in sql.fetch(
            f"SELECT tier_id FROM {through._meta.db_table} WHERE reward_id = %s", [reward.pk]
        )
    }


def refusal_for(
    *,
    reward: Reward,
    member: Member,
    standing: MemberStanding,
    price: int,
    program: CompiledProgram,
    at: datetime,
    exclusive_tiers: set[int] | None = None,
) -> RedemptionRefused | None:
    """Why the member cannot redeem the reward now, or None. Callers deciding on a redemption
    must hold the member's lock, so the member's side of the answer stays true; stock can still
    run out before they commit, which taking it must check again. ``exclusive_tiers`` (the
    reward's, when already read) saves a query."""
    if (
        not reward.is_active
        or (reward.available_from and at < reward.available_from)
        or (reward.available_until and at >= reward.available_until)
    ):
        return RedemptionRefused(gettext("The reward is not available now."), code="not_available")
    if reward.only_segment_id is not None and not member_in_segment(reward.only_segment_id, member):
        return RedemptionRefused(
            gettext("The reward is for the members of a segment."), code="segment_required"
        )
    tier = program.tier(standing.tier_id)
    exclusive = _exclusive_tiers(reward) if exclusive_tiers is None else exclusive_tiers
    if exclusive and (tier is None or tier.id not in exclusive):
        return RedemptionRefused(gettext("The reward is for other tiers."), code="tier_required")
    if reward.min_tier_id:
        needed = program.tier(reward.min_tier_id)
        if needed and (tier is None or tier.position < needed.position):
            return RedemptionRefused(
                gettext("The reward needs the %(tier)s tier or above.") % {"tier": needed.name},
                code="tier_required",
                details={"tier": needed.code},
            )
    live = Redemption.objects.filter(member=member, reward=reward).exclude(
        status=Redemption.Status.CANCELLED
    )
    if reward.limit_per_member is not None and live.count() >= reward.limit_per_member:
        return RedemptionRefused(
            gettext("The member has redeemed this reward as often as allowed."),
            code="limit_reached",
        )
    if reward.limit_per_period is not None:
        since = start_of_day(period_start(reward.limit_period, at))
        if live.filter(created_at__gte=since).count() >= reward.limit_per_period:
            return RedemptionRefused(
                gettext("The member has redeemed this reward as often as allowed this %(period)s.")
                % {"period": str(reward.get_limit_period_display()).lower()},
                code="limit_reached",
            )
    if reward.stock is not None and reward.stock < 1:
        return RedemptionRefused(gettext("The reward is out of stock."), code="out_of_stock")
    if (
        reward.kind == Reward.Kind.COUPON
        and not CouponCode.objects.filter(pool_id=reward.pool_id, redemption__isnull=True).exists()
    ):
        return RedemptionRefused(gettext("No coupon codes are left."), code="out_of_stock")
    if standing.points < price:
        return RedemptionRefused(
            gettext("The member does not have enough spendable points."),
            code="insufficient_points",
            details={"balance": standing.points, "required": price},
        )
    return None


def catalog_for(*, member: Member | None) -> list[Offer]:
    """Active rewards with, for a member, the price they pay and whether they can redeem now."""
    now = timezone.now()
    return _offers(_offered(now), member, compiled_program(), now)


def offer_for(*, member: Member, code: str) -> Offer | None:
    """One reward of the catalog as the member sees it (``catalog_for``'s answer for it)."""
    now = timezone.now()
    found = _offers(_offered(now).filter(code=code), member, compiled_program(), now)
    return found[0] if found else None


def _offered(now):
    """The rewards the catalog shows: active and not yet ended."""
    return (
        Reward.objects.filter(is_active=True)
        .filter(Q(available_until__isnull=True) | Q(available_until__gt=now))
        .select_related("min_tier")
        .prefetch_related("exclusive_tiers")
    )


def _offers(rewards, member: Member | None, program: CompiledProgram, now) -> list[Offer]:
    if member is None:
        return [Offer(reward=r, price=r.cost_points, refusal=None) for r in rewards]
    standing = MemberStanding.objects.filter(pk=member.pk).first() or MemberStanding(member=member)
    offers = []
    for reward in rewards:
        price = price_for(reward, program, standing.tier_id, member)
        refusal = refusal_for(
            reward=reward,
            member=member,
            standing=standing,
            price=price,
            program=program,
            at=now,
            exclusive_tiers={tier.pk for tier in reward.exclusive_tiers.all()},  # prefetched
        )
        offers.append(Offer(reward=reward, price=price, refusal=refusal))
    return offers
