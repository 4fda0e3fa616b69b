"""Catalog and redemption endpoints. Thin: parse, call one service or selector, render."""

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import scopes
from accounts.permissions import IsMember
from accounts.services import member_get
from core.api.fields import validated
from core.api.idempotency import body_with_idempotency_key
from rewards.api.serializers import (
    MeRedemptionRequestSerializer,
    OfferSerializer,
    RedemptionRequestSerializer,
    RedemptionSerializer,
)
from rewards.models import Redemption
from rewards.services.catalog import catalog_for
from rewards.services.redemptions import redeem, redemption_cancel

# Made once, shared by every request (see ``accounts.api.serializers.validated``).
_REDEMPTION_REQUEST = RedemptionRequestSerializer()
_ME_REDEMPTION_REQUEST = MeRedemptionRequestSerializer()
_REDEMPTION = RedemptionSerializer()


def _redemption_response(result) -> Response:
    body = {**_REDEMPTION.to_representation(result.redemption), "replayed": result.replayed}
    return Response(body, status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED)


class RewardListView(APIView):
    """The catalog; with ``member``, the price that member pays and whether they can redeem."""

    required_scopes = (scopes.REWARDS_READ,)

    @extend_schema(
        parameters=[
            OpenApiParameter("member", OpenApiTypes.STR, description="A member's external_id.")
        ],
        responses=OfferSerializer(many=True),
    )
    def get(self, request: Request) -> Response:
        external_id = request.query_params.get("member")
        member = member_get(external_id=external_id) if external_id else None
        return Response(OfferSerializer(catalog_for(member=member), many=True).data)


class MeRewardListView(APIView):
    permission_classes = [IsMember]

    @extend_schema(responses=OfferSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(OfferSerializer(catalog_for(member=request.auth), many=True).data)


class RedemptionCreateView(APIView):
    """Redeem a reward for a member; refusals are 422 with a stable code."""

    required_scopes = (scopes.REDEMPTIONS_WRITE,)

    @extend_schema(
        request=RedemptionRequestSerializer,
        responses={201: RedemptionSerializer, 200: RedemptionSerializer},
    )
    def post(self, request: Request) -> Response:
        data = validated(_REDEMPTION_REQUEST, body_with_idempotency_key(request))
        result = redeem(
            member=member_get(external_id=data["external_id"]),
            reward_code=data["reward"],
            idempotency_key=data["idempotency_key"],
            client=request.auth,
            details=data["details"],
        )
        return _redemption_response(result)


class RedemptionCancelView(APIView):
    """Cancel a redemption: refund once, return stock, release an unused code."""

    required_scopes = (scopes.REDEMPTIONS_WRITE,)

    @extend_schema(request=None, responses=RedemptionSerializer)
    def post(self, request: Request, redemption_id: int) -> Response:
        redemption = redemption_cancel(redemption_id=redemption_id, client=request.auth)
        return Response(RedemptionSerializer(redemption).data)


class MemberRedemptionListView(generics.ListAPIView):
    """A member's redemptions, newest first."""

    required_scopes = (scopes.MEMBERS_READ,)
    serializer_class = RedemptionSerializer

    def get_queryset(self):
        member = member_get(external_id=self.kwargs["external_id"])
        return Redemption.objects.filter(member=member).select_related("member", "reward")


class MeRedemptionView(generics.ListAPIView):
    """The member's own redemptions (GET) and redeeming for themselves (POST)."""

    permission_classes = [IsMember]
    serializer_class = RedemptionSerializer

    def get_queryset(self):
        return Redemption.objects.filter(member=self.request.auth).select_related(
            "member", "reward"
        )

    @extend_schema(
        request=MeRedemptionRequestSerializer,
        responses={201: RedemptionSerializer, 200: RedemptionSerializer},
    )
    def post(self, request: Request) -> Response:
        data = validated(_ME_REDEMPTION_REQUEST, body_with_idempotency_key(request))
        member = request.auth
        result = redeem(
            member=member,
            reward_code=data["reward"],
            # Members share no key space: their keys are their own.
            idempotency_key=f"member:{member.pk}:{data['idempotency_key']}",
            details=data["details"],
        )
        return _redemption_response(result)
