"""Redeeming rewards and cancelling redemptions: correct under any load.

Lock order, everywhere: the member's standing first, then the reward's row. The member's
lock keeps their side true (limits, balance, the stored key), so a member limit is never
exceeded, a balance never goes below zero and a retried request finds its stored redemption
and is never charged twice. The reward's row is locked last and only for the moment before
commit: one conditional update takes a unit of stock only if one is left, and if none is, the
whole redemption rolls back. Stock never goes below zero, and concurrent redemptions of one
reward wait on each other for a single statement, not for a whole redemption.
"""

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiClient, Member
from core.errors import BusinessRuleViolation, NotFound
from core.idempotency import idempotent_write, stored_write
from core.idempotency import request_hash as hash_request
from loyalty.ledger.points import points_credit_locked, points_debit_locked
from loyalty.ledger.session import member_session
from loyalty.models import EntryKind, LotMovement, SourceType
from loyalty.outbox import webhook_emit
from loyalty.persistence import bulk
from rewards.models import CouponCode, Redemption, Reward
from rewards.services.catalog import RedemptionRefused, price_for, refusal_for, reward_get


class RewardNotFound(NotFound):
    code = "reward_not_found"
    message = _("No such reward.")


class RedemptionNotFound(NotFound):
    code = "redemption_not_found"
    message = _("No such redemption.")


@dataclass(frozen=True)
class RedemptionResult:
    redemption: Redemption
    replayed: bool = False


def _stored(client: ApiClient | None, key: str, request_hash: str) -> RedemptionResult | None:
    stored = stored_write(
        Redemption.objects.select_related("reward", "member"),
        client=client,
        key=key,
        request_hash=request_hash,
    )
    return RedemptionResult(redemption=stored, replayed=True) if stored else None


def redeem(
    *,
    member: Member,
    reward_code: str,
    idempotency_key: str,
    client: ApiClient | None = None,
    details: dict[str, Any] | None = None,
) -> RedemptionResult:
    """Spend the member's points on the reward in one transaction: check eligibility, spend
    through the ledger (lots closest to expiry first), take stock, hand out a coupon code and
    record the redemption. Refusals raise ``RedemptionRefused`` with a stable code."""
    details = details or {}
    request_hash = hash_request([member.pk, reward_code, details], sort_keys=True)
    return idempotent_write(
        lambda: _redeem(member, reward_code, idempotency_key, client, details, request_hash),
        stored=lambda: _stored(client, idempotency_key, request_hash),
    )


def reward_gift(
    *, member: Member, reward_code: str, idempotency_key: str, reason: str
) -> RedemptionResult:
    """Give the member the reward at no cost (a campaign's grant): a redemption of zero points,
    under the reward's other rules (availability, stock and codes, limits, tiers, segment).
    Idempotent per key, as ``redeem``; refusals raise ``RedemptionRefused``."""
    details = {"gift": reason}
    request_hash = hash_request([member.pk, reward_code, details], sort_keys=True)
    return idempotent_write(
        lambda: _redeem(
            member, reward_code, idempotency_key, None, details, request_hash, gift=True
        ),
        stored=lambda: _stored(None, idempotency_key, request_hash),
    )


def _redeem(
    member: Member,
    reward_code: str,
    idempotency_key: str,
    client: ApiClient | None,
    details: dict[str, Any],
    request_hash: str,
    gift: bool = False,
) -> RedemptionResult:
    with member_session(member.pk, savepoint=False) as session:
        standing, program, work = session.standing, session.program, session.work
        if stored := _stored(client, idempotency_key, request_hash):
            return stored
        found = reward_get(reward_code)
        if found is None:
            raise RewardNotFound(details={"reward": reward_code})
        reward, exclusive_tiers = found
        price = 0 if gift else price_for(reward, program, standing.tier_id, member)
        now = timezone.now()
        refusal = refusal_for(
            reward=reward,
            member=member,
            standing=standing,
            price=price,
            program=program,
            at=now,
            exclusive_tiers=exclusive_tiers,
        )
        if refusal is not None:
            raise refusal
        redemption = Redemption(
            member=member,
            reward=reward,
            client=client,
            idempotency_key=idempotency_key,
            request_hash=request_hash,
            points_cost=price,
            details=details,
            status=Redemption.Status.PENDING
            if reward.kind == Reward.Kind.PHYSICAL
            else Redemption.Status.COMPLETED,
        )
        bulk.insert(Redemption, [redemption])
        spend = None
        if price:
            spend = points_debit_locked(
                work=work,
                standing=standing,
                amount=price,
                kind=EntryKind.SPEND,
                source_type=SourceType.REDEMPTION,
                source_id=str(redemption.pk),
                reason=f"Redeemed {reward.code}",
            )
        if reward.kind == Reward.Kind.COUPON:
            redemption.coupon_code = _hand_out_code(reward, redemption, now)
        webhook_emit(
            work=work,
            type="reward.redeemed",
            member_id=member.pk,
            data={
                "member": member.external_id,
                "redemption_id": redemption.pk,
                "reward": reward.code,
                "points": price,
                "status": redemption.status,
                "coupon_code": redemption.coupon_code,
                "gift": gift,
            },
        )
    # Flushed: the spend has its id. The stock is taken last, so the reward's row stays locked
    # only until the commit; the redemption's spend and code are written with it.
    redemption.spend_entry = spend
    _take_stock(
        reward,
        along=bulk.columns_write(Redemption, [redemption], ["spend_entry", "coupon_code"]),
    )
    return RedemptionResult(redemption=redemption)


def _take_stock(reward: Reward, *, along: list[bulk.Write]) -> None:
    """Count the redemption and take one unit of stock, if one is left: the last statement of
    the redemption, so the reward's row stays locked only until the commit. Out of stock here
    (another redemption took the last unit since we read the reward) rolls everything back.
    ``along``: writes answering nothing, sent in the same statement."""
    taken = bulk.execute(
        f"UPDATE {Reward._meta.db_table} SET stock = stock - 1, "  # unlimited (NULL) stays so
        "redeemed_count = redeemed_count + 1 WHERE id = %s AND (stock IS NULL OR stock <> 0)",
        [reward.pk],
        along=along,
    )
    if not taken:
        raise RedemptionRefused(gettext("The reward is out of stock."), code="out_of_stock")


def _hand_out_code(reward: Reward, redemption: Redemption, now) -> str:
    # SKIP LOCKED: concurrent redemptions of rewards sharing a pool take different codes.
    code = (
        CouponCode.objects.select_for_update(skip_locked=True)
        .filter(pool_id=reward.pool_id, redemption__isnull=True)
        .order_by("id")
        .first()
    )
    if code is None:
        raise RedemptionRefused(gettext("No coupon codes are left."), code="out_of_stock")
    code.redemption = redemption
    code.assigned_at = now
    code.save(update_fields=["redemption", "assigned_at"])
    return code.code


class CannotCancel(BusinessRuleViolation):
    code = "cannot_cancel"


@transaction.atomic
def redemption_cancel(
    *, redemption_id: int, client: ApiClient | None = None, any_client: bool = False
) -> Redemption:
    """Cancel once: refund the points with their original expiry, return the stock, release an
    unused coupon code. Cancelling again returns the cancelled redemption and refunds nothing.
    A shipped or delivered gift cannot be cancelled."""
    query = Redemption.objects.filter(pk=redemption_id)
    if not any_client:
        query = query.filter(client=client)
    member_id = query.values_list("member_id", flat=True).first()
    if member_id is None:
        raise RedemptionNotFound(details={"redemption_id": redemption_id})
    with member_session(member_id, savepoint=False) as session:
        standing, work = session.standing, session.work
        redemption = (
            Redemption.objects.select_for_update().select_related("reward").get(pk=redemption_id)
        )
        if redemption.status == Redemption.Status.CANCELLED:
            return redemption
        if redemption.status in (Redemption.Status.SHIPPED, Redemption.Status.DELIVERED):
            raise CannotCancel(f"A {redemption.status} gift cannot be cancelled.")
        reward = redemption.reward
        # The refund keeps each spent lot's expiry: one refund per original expiry date.
        by_expiry: dict = {}
        for movement in LotMovement.objects.filter(
            entry_id=redemption.spend_entry_id
        ).select_related("lot"):
            by_expiry[movement.lot.expires_at] = (
                by_expiry.get(movement.lot.expires_at, 0) + movement.amount
            )
        for expires_at, amount in sorted(
            by_expiry.items(), key=lambda item: (item[0] is None, item[0])
        ):
            points_credit_locked(
                work=work,
                standing=standing,
                amount=amount,
                kind=EntryKind.REFUND,
                source_type=SourceType.REDEMPTION,
                source_id=str(redemption.pk),
                reason=f"Cancelled redemption of {reward.code}",
                expires_at=expires_at,
                use_default_expiry=False,
            )
        Reward.objects.filter(pk=reward.pk).update(
            stock=F("stock") + 1,  # unlimited (NULL) stays unlimited
            redeemed_count=F("redeemed_count") - 1,
        )
        CouponCode.objects.filter(redemption=redemption).update(redemption=None, assigned_at=None)
        redemption.status = Redemption.Status.CANCELLED
        redemption.cancelled_at = timezone.now()
        redemption.save(update_fields=["status", "cancelled_at", "updated_at"])
        webhook_emit(
            work=work,
            type="redemption.cancelled",
            member_id=member_id,
            data={
                "member": redemption.member.external_id,
                "redemption_id": redemption.pk,
                "reward": reward.code,
                "points_refunded": redemption.points_cost,
            },
        )
        return redemption


FULFILMENT_STEPS = {
    Redemption.Status.PENDING: Redemption.Status.SHIPPED,
    Redemption.Status.SHIPPED: Redemption.Status.DELIVERED,
}


@transaction.atomic
def redemption_advance(*, redemption_id: int, to: str) -> Redemption:
    """Move a physical gift along: pending → shipped → delivered."""
    redemption = Redemption.objects.select_for_update().get(pk=redemption_id)
    if FULFILMENT_STEPS.get(redemption.status) != to:
        raise CannotCancel(
            f"A {redemption.status} redemption cannot become {to}.", code="invalid_transition"
        )
    redemption.status = to
    redemption.save(update_fields=["status", "updated_at"])
    return redemption
