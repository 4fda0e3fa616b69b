"""Member identity endpoints. Thin: parse, call one service, render."""

from urllib.parse import urlencode

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import scopes
from accounts.api.serializers import (
    MemberSelfUpdateSerializer,
    MemberSerializer,
    MemberTokenRequestSerializer,
    MemberTokenSerializer,
    MemberWriteSerializer,
)
from accounts.models import Member
from accounts.permissions import IsMember
from accounts.services import member_get, member_link_issue, member_token_issue, member_upsert
from core.errors import InvalidInput

MAX_EXTERNAL_ID_LENGTH = Member._meta.get_field("external_id").max_length


def check_external_id(external_id: str) -> str:
    if not external_id.strip() or len(external_id) > MAX_EXTERNAL_ID_LENGTH:
        raise InvalidInput(
            f"external_id must be 1 to {MAX_EXTERNAL_ID_LENGTH} characters.",
            code="invalid_external_id",
        )
    return external_id


class MemberListView(generics.ListAPIView):
    """Members, newest first (cursor-paginated)."""

    required_scopes = (scopes.MEMBERS_READ,)
    serializer_class = MemberSerializer
    queryset = Member.objects.all()


class MemberDetailView(APIView):
    """Read a member, or create-or-update one by the host app's ``external_id``.

    ``represent`` is the hook other apps override to add the member's standing.
    """

    required_scopes = {"GET": (scopes.MEMBERS_READ,), "PUT": (scopes.MEMBERS_WRITE,)}

    def represent(self, member: Member) -> dict:
        return MemberSerializer(member).data

    @extend_schema(responses=MemberSerializer)
    def get(self, request: Request, external_id: str) -> Response:
        return Response(self.represent(member_get(external_id=external_id)))

    @extend_schema(
        request=MemberWriteSerializer, responses={200: MemberSerializer, 201: MemberSerializer}
    )
    def put(self, request: Request, external_id: str) -> Response:
        check_external_id(external_id)
        body = MemberWriteSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        member, created = member_upsert(external_id=external_id, data=body.validated_data)
        return Response(
            self.represent(member),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class MemberTokenView(APIView):
    """Mint a short-lived token for the member's own client (``/api/v1/me…``)."""

    required_scopes = (scopes.MEMBERS_TOKEN,)

    @extend_schema(request=MemberTokenRequestSerializer, responses={201: MemberTokenSerializer})
    def post(self, request: Request, external_id: str) -> Response:
        body = MemberTokenRequestSerializer(data=request.data or {})
        body.is_valid(raise_exception=True)
        member = member_get(external_id=external_id)
        minted = member_token_issue(
            member=member, client=request.auth, ttl_seconds=body.validated_data.get("ttl_seconds")
        )
        link = member_link_issue(
            member=member, client=request.auth, language=body.validated_data.get("language", "")
        )
        entry = settings.LOYALTY_MEMBER_CENTER_URL or request.build_absolute_uri("/m/enter")
        data = {
            "token": minted.token,
            "expires_at": minted.expires_at,
            "external_id": member.external_id,
            "url": f"{entry}?{urlencode({'t': link.token})}",
            "url_expires_at": link.expires_at,
        }
        return Response(MemberTokenSerializer(data).data, status=status.HTTP_201_CREATED)


class MeView(APIView):
    """The calling member (member token)."""

    permission_classes = [IsMember]

    def represent(self, member: Member) -> dict:
        return MemberSerializer(member).data

    @extend_schema(responses=MemberSerializer)
    def get(self, request: Request) -> Response:
        return Response(self.represent(request.auth))

    @extend_schema(request=MemberSelfUpdateSerializer, responses=MemberSerializer)
    def patch(self, request: Request) -> Response:
        body = MemberSelfUpdateSerializer(data=request.data)
        body.is_valid(raise_exception=True)
        member, _ = member_upsert(external_id=request.auth.external_id, data=body.validated_data)
        return Response(self.represent(member))
