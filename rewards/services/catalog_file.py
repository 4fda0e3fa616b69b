"""Loading a catalog from a file: pools (with generated codes) and rewards, by code, idempotently."""

from typing import Any

from django.db import transaction

from core.errors import InvalidInput
from loyalty.models import Tier
from rewards.models import CouponPool, Reward
from rewards.services.pools import pool_generate

REWARD_FIELDS = {
    "name",
    "description",
    "image_url",
    "kind",
    "cost_points",
    "stock",
    "limit_per_member",
    "limit_per_period",
    "limit_period",
    "available_from",
    "available_until",
    "payload",
    "is_active",
    "position",
}


@transaction.atomic
def catalog_load(*, data: dict[str, Any]) -> str:
    """Create or update pools and rewards by code. A pool with no codes gets its generated
    ones; a pool that has codes keeps them. Stock is set only when a reward is created."""
    pools = {}
    for item in data.get("pools", []):
        pool, _ = CouponPool.objects.update_or_create(
            code=item["code"],
            defaults={
                "name": item["name"],
                "low_stock_threshold": item.get("low_stock_threshold", 20),
            },
        )
        if not pool.codes.exists() and item.get("count"):
            pool_generate(pool=pool, pattern=item["pattern"], count=item["count"])
        pools[pool.code] = pool
    created = updated = 0
    for item in data.get("rewards", []):
        unknown = set(item) - REWARD_FIELDS - {"code", "pool", "min_tier", "exclusive_tiers"}
        if unknown:
            raise InvalidInput(
                f"Unknown reward fields: {', '.join(sorted(unknown))}", code="invalid_catalog"
            )
        values = {k: v for k, v in item.items() if k in REWARD_FIELDS and k != "stock"}
        if item.get("pool"):
            values["pool"] = pools.get(item["pool"]) or CouponPool.objects.get(code=item["pool"])
        if item.get("min_tier"):
            values["min_tier"] = Tier.objects.get(code=item["min_tier"])
        reward, was_created = Reward.objects.update_or_create(
            code=item["code"],
            defaults=values,
            create_defaults={**values, "stock": item.get("stock")},
        )
        if item.get("exclusive_tiers"):
            reward.exclusive_tiers.set(Tier.objects.filter(code__in=item["exclusive_tiers"]))
        created += was_created
        updated += not was_created
    return f"{len(pools)} pool(s); rewards: {created} created, {updated} updated"
