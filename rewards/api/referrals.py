"""Referral endpoints: a member's invite code and counts, attribution at registration, the
invitees and their states; for the host app and, with a member token, for the member."""

from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import scopes
from accounts.permissions import IsMember
from accounts.services import member_get
from core.api.fields import JsonObjectField, validated
from rewards.referrals.attribution import referral_attribute
from rewards.referrals.codes import invite_code_regenerate, invite_link
from rewards.referrals.models import Referral
from rewards.referrals.selectors import invitees_of, masked_name, referral_summary


class InvitedBySerializer(serializers.Serializer):
    referral_id = serializers.IntegerField(source="pk")
    inviter = serializers.CharField(source="inviter.external_id")
    state = serializers.ChoiceField(choices=Referral.State.choices)
    joined_at = serializers.DateTimeField()


class ReferralSummarySerializer(serializers.Serializer):
    active = serializers.BooleanField(help_text="Whether the program takes referrals now.")
    code = serializers.CharField(help_text="The member's invite code in use.")
    link = serializers.CharField(
        allow_null=True, help_text="The host app's sign-up link with the code (if set)."
    )
    invited_by = InvitedBySerializer(allow_null=True)
    joined = serializers.IntegerField(help_text="Friends who joined with the member's code.")
    qualified = serializers.IntegerField(help_text="Friends who qualified (and still count).")
    pending = serializers.IntegerField(help_text="Friends joined, not yet qualified or held.")


class CodeSerializer(serializers.Serializer):
    code = serializers.CharField()
    link = serializers.CharField(allow_null=True)


class AttributionRequestSerializer(serializers.Serializer):
    code = serializers.CharField(
        max_length=32, required=False, allow_blank=True, help_text="The invite code used."
    )
    inviter = serializers.CharField(
        max_length=128,
        required=False,
        allow_blank=True,
        help_text="Or the inviter's external_id (when the host app knows it).",
    )
    signals = JsonObjectField(
        required=False,
        default=dict,
        help_text='Identity signals of the new member, e.g. {"device_id": "…"}; kept as digests.',
    )


class ReferralSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    member = serializers.CharField(source="invitee.external_id")
    inviter = serializers.CharField(source="inviter.external_id")
    state = serializers.ChoiceField(choices=Referral.State.choices)
    hold_reason = serializers.CharField(help_text="Why it is held (empty if it is not).")
    joined_at = serializers.DateTimeField()
    qualify_by = serializers.DateTimeField()
    qualified_at = serializers.DateTimeField(allow_null=True)
    friend_number = serializers.IntegerField(allow_null=True)
    rewarded = serializers.SerializerMethodField()

    def get_rewarded(self, referral: Referral) -> bool:
        return referral.rewarded_at is not None


class AttributionResponseSerializer(ReferralSerializer):
    replayed = serializers.BooleanField()


class MeInviteeSerializer(serializers.Serializer):
    """What a member sees of a friend: a name, never the host app's id."""

    name = serializers.SerializerMethodField()
    state = serializers.ChoiceField(choices=Referral.State.choices)
    joined_at = serializers.DateTimeField()
    qualify_by = serializers.DateTimeField()
    qualified_at = serializers.DateTimeField(allow_null=True)

    def get_name(self, referral: Referral) -> str:
        return masked_name(referral.invitee.display_name)


_ATTRIBUTION = AttributionRequestSerializer()


def _summary(member) -> Response:
    return Response(ReferralSummarySerializer(referral_summary(member=member)).data)


def _new_code(member) -> Response:
    code = invite_code_regenerate(member=member)
    return Response(
        CodeSerializer({"code": code.code, "link": invite_link(code.code)}).data,
        status=status.HTTP_201_CREATED,
    )


class MemberReferralView(APIView):
    """The member's invite code, link, inviter and counts (GET); name who invited a member
    who just registered (POST: the first valid code wins, a retry answers the same)."""

    required_scopes = {"GET": (scopes.MEMBERS_READ,), "POST": (scopes.MEMBERS_WRITE,)}

    @extend_schema(responses=ReferralSummarySerializer)
    def get(self, request: Request, external_id: str) -> Response:
        return _summary(member_get(external_id=external_id))

    @extend_schema(
        request=AttributionRequestSerializer,
        responses={201: AttributionResponseSerializer, 200: AttributionResponseSerializer},
    )
    def post(self, request: Request, external_id: str) -> Response:
        data = validated(_ATTRIBUTION, request.data)
        result = referral_attribute(
            invitee=member_get(external_id=external_id),
            code=data.get("code") or None,
            inviter_external_id=data.get("inviter") or None,
            signals=data["signals"],
        )
        body = {**ReferralSerializer(result.referral).data, "replayed": result.replayed}
        return Response(
            body, status=status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED
        )


class MemberReferralCodeView(APIView):
    """Retire the member's invite code and give them a new one (old links stop working)."""

    required_scopes = (scopes.MEMBERS_WRITE,)

    @extend_schema(request=None, responses={201: CodeSerializer})
    def post(self, request: Request, external_id: str) -> Response:
        return _new_code(member_get(external_id=external_id))


class MemberInviteeListView(generics.ListAPIView):
    """The members this one invited and their states, newest first."""

    required_scopes = (scopes.MEMBERS_READ,)
    serializer_class = ReferralSerializer

    def get_queryset(self):
        return invitees_of(member=member_get(external_id=self.kwargs["external_id"]))


class MeReferralView(APIView):
    permission_classes = [IsMember]

    @extend_schema(responses=ReferralSummarySerializer)
    def get(self, request: Request) -> Response:
        return _summary(request.auth)


class MeReferralCodeView(APIView):
    permission_classes = [IsMember]

    @extend_schema(request=None, responses={201: CodeSerializer})
    def post(self, request: Request) -> Response:
        return _new_code(request.auth)


class MeInviteeListView(generics.ListAPIView):
    """The friends the member invited: a masked name and the state of each."""

    permission_classes = [IsMember]
    serializer_class = MeInviteeSerializer

    def get_queryset(self):
        return invitees_of(member=self.request.auth)
