from rest_framework import serializers

from core.api.fields import JsonObjectField
from rewards.models import Redemption
from rewards.services.catalog import Offer


class OfferSerializer(serializers.Serializer):
    code = serializers.CharField(source="reward.code")
    name = serializers.CharField(source="reward.display_name")
    description = serializers.CharField(source="reward.display_description")
    image_url = serializers.CharField(source="reward.image_url")
    kind = serializers.CharField(source="reward.kind")
    cost_points = serializers.IntegerField(source="reward.cost_points")
    price = serializers.IntegerField(help_text="What this member pays, after tier discounts.")
    stock = serializers.IntegerField(
        source="reward.stock", allow_null=True, help_text="Null: unlimited."
    )
    available_until = serializers.DateTimeField(source="reward.available_until", allow_null=True)
    min_tier = serializers.CharField(source="reward.min_tier.code", allow_null=True, default=None)
    exclusive_tiers = serializers.SerializerMethodField()
    can_redeem = serializers.BooleanField()
    reason = serializers.SerializerMethodField(
        help_text="Why not: not_available, segment_required, tier_required, limit_reached, out_of_stock, insufficient_points."
    )

    def get_exclusive_tiers(self, offer: Offer) -> list[str]:
        return [tier.code for tier in offer.reward.exclusive_tiers.all()]

    def get_reason(self, offer: Offer) -> dict | None:
        if offer.refusal is None:
            return None
        return {"code": offer.refusal.code, "message": offer.refusal.message}


class RedemptionRequestSerializer(serializers.Serializer):
    external_id = serializers.CharField(max_length=128)
    reward = serializers.SlugField(max_length=64)
    idempotency_key = serializers.CharField(max_length=100)
    details = JsonObjectField(required=False, default=dict, help_text="E.g. a shipping address.")


class MeRedemptionRequestSerializer(serializers.Serializer):
    reward = serializers.SlugField(max_length=64)
    idempotency_key = serializers.CharField(max_length=100)
    details = JsonObjectField(required=False, default=dict, help_text="E.g. a shipping address.")


class RedemptionSerializer(serializers.Serializer):
    # Fields declared, not read off the model: every redemption answers with one, and a
    # ModelSerializer works its fields out of the model again for each instance.
    id = serializers.IntegerField(read_only=True)
    member = serializers.CharField(source="member.external_id")
    reward = serializers.CharField(source="reward.code")
    reward_name = serializers.CharField(source="reward.display_name")
    status = serializers.ChoiceField(choices=Redemption.Status.choices)
    points_cost = serializers.IntegerField(help_text="What the member paid (after tier discounts).")
    coupon_code = serializers.CharField(help_text="The code handed out, if any.")
    payload = serializers.JSONField(source="reward.payload")
    details = serializers.JSONField(help_text="From the host app, e.g. a shipping address.")
    created_at = serializers.DateTimeField()
    cancelled_at = serializers.DateTimeField(allow_null=True)
