"""The rewards catalog as a file, and as the ``rewards`` section of the program file: coupon
pools and rewards, by code, idempotently; exported in the same format.

A pool's codes are stock, not program: a pool is exported without them, and a pool loaded with
``pattern`` and ``count`` gets that many generated codes if it has none yet. A reward's stock is
set only when the reward is created (later, stock moves with redemptions, not with the file).
"""

from typing import Any

from django.db import transaction
from rest_framework import serializers

from core.errors import InvalidInput
from loyalty.models import Segment, Tier
from loyalty.program.file_format import UpsertSerializer, code_of, valid_items
from rewards.models import CouponPool, Reward
from rewards.services.pools import pool_generate

REWARD_FIELDS = [
    "code",
    "name",
    "description",
    "translations",
    "image_url",
    "kind",
    "cost_points",
    "stock",
    "limit_per_member",
    "limit_per_period",
    "limit_period",
    "available_from",
    "available_until",
    "min_tier",
    "exclusive_tiers",
    "only_segment",
    "price_segment",
    "segment_price",
    "pool",
    "payload",
    "is_active",
    "position",
]


class PoolFileSerializer(UpsertSerializer):
    pattern = serializers.CharField(max_length=64, required=False, write_only=True)
    count = serializers.IntegerField(
        min_value=0, max_value=100_000, required=False, write_only=True
    )

    class Meta:
        model = CouponPool
        fields = ["code", "name", "low_stock_threshold", "pattern", "count"]


class RewardFileSerializer(UpsertSerializer):
    pool = code_of(CouponPool, required=False, allow_null=True)
    min_tier = code_of(Tier, required=False, allow_null=True)
    exclusive_tiers = code_of(Tier, many=True, required=False)
    only_segment = code_of(Segment, required=False, allow_null=True)
    price_segment = code_of(Segment, required=False, allow_null=True)

    class Meta:
        model = Reward
        fields = REWARD_FIELDS

    def to_representation(self, instance):
        data = super().to_representation(instance)
        data["exclusive_tiers"] = sorted(data["exclusive_tiers"])
        return data


def catalog_export() -> dict[str, Any]:
    return {
        "pools": PoolFileSerializer(CouponPool.objects.order_by("code"), many=True).data,
        "rewards": RewardFileSerializer(
            Reward.objects.select_related("pool", "min_tier", "only_segment", "price_segment")
            .prefetch_related("exclusive_tiers")
            .order_by("code"),
            many=True,
        ).data,
    }


def _valid(section: str, serializer_class, items: Any) -> list[dict]:
    return valid_items(
        section,
        serializer_class,
        items,
        message="The catalog is not valid.",
        code="invalid_catalog",
    )


@transaction.atomic
def catalog_load(*, data: Any, switch_off_missing: bool = False) -> str:
    """Create or update pools and rewards by code; refuses the whole file, naming each problem's
    path, if any item is not valid. With ``switch_off_missing``, rewards the file leaves out
    are switched off."""
    if not isinstance(data, dict) or set(data) - {"pools", "rewards"}:
        raise InvalidInput(
            "The catalog is not valid.",
            code="invalid_catalog",
            details=["catalog: Expected a mapping of pools and rewards."],
        )
    pools = 0
    for item in _valid("pools", PoolFileSerializer, data.get("pools", [])):
        pattern, count = item.pop("pattern", None), item.pop("count", 0)
        pool, _ = CouponPool.objects.update_or_create(code=item.pop("code"), defaults=item)
        if pattern and count and not pool.codes.exists():
            pool_generate(pool=pool, pattern=pattern, count=count)
        pools += 1
    created = updated = 0
    listed = set()
    for item in _valid("rewards", RewardFileSerializer, data.get("rewards", [])):
        exclusive = item.pop("exclusive_tiers", [])
        stock = item.pop("stock", None)
        reward, was_created = Reward.objects.update_or_create(
            code=item.pop("code"), defaults=item, create_defaults={**item, "stock": stock}
        )
        reward.exclusive_tiers.set(exclusive)
        created += was_created
        updated += not was_created
        listed.add(reward.code)
    if switch_off_missing and "rewards" in data:
        for reward in Reward.objects.filter(is_active=True).exclude(code__in=listed):
            reward.is_active = False
            reward.save(update_fields=["is_active"])
            updated += 1
    return f"{pools} pool(s); rewards: {created} created, {updated} updated"
