"""Badges, quests, streaks and leaderboards. Thin: parse, call a selector, render."""

from django.http import Http404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import scopes
from accounts.models import Member
from accounts.permissions import IsMember, MemberOrScopes
from accounts.services import member_get
from core.errors import InvalidInput
from loyalty.api.serializers import (
    LeaderboardInfoSerializer,
    LeaderboardViewSerializer,
    MemberBadgesSerializer,
    QuestSerializer,
    StreakSerializer,
)
from loyalty.gamification.leaderboards import leaderboard_view, resolve_period
from loyalty.models import Leaderboard
from loyalty.segments.filters import member_in_segment
from loyalty.selectors import member_badges, member_quests, member_streaks


class _MemberSection(APIView):
    """``/members/{external_id}/<section>`` for host apps; subclasses serve ``/me/<section>``."""

    required_scopes = (scopes.MEMBERS_READ,)

    def build(self, member: Member):
        raise NotImplementedError

    def get(self, request: Request, external_id: str | None = None) -> Response:
        member = request.auth if external_id is None else member_get(external_id=external_id)
        return Response(self.build(member))


@extend_schema_view(get=extend_schema(responses=MemberBadgesSerializer))
class MemberBadgesView(_MemberSection):
    """Earned badges, and progress towards the rest (secret ones hidden until earned)."""

    def build(self, member):
        return member_badges(member)


@extend_schema_view(get=extend_schema(responses=QuestSerializer(many=True)))
class MemberQuestsView(_MemberSection):
    """Quests with progress in their current period."""

    def build(self, member):
        return member_quests(
            member, in_segment=lambda segment_id: member_in_segment(segment_id, member)
        )


@extend_schema_view(get=extend_schema(responses=StreakSerializer(many=True)))
class MemberStreaksView(_MemberSection):
    """Current and longest streaks."""

    def build(self, member):
        return member_streaks(member)


class MeBadgesView(MemberBadgesView):
    permission_classes = [IsMember]


class MeQuestsView(MemberQuestsView):
    permission_classes = [IsMember]


class MeStreaksView(MemberStreaksView):
    permission_classes = [IsMember]


class LeaderboardListView(APIView):
    """The active leaderboards."""

    permission_classes = [MemberOrScopes]
    required_scopes = (scopes.MEMBERS_READ,)

    @extend_schema(operation_id="leaderboards_list", responses=LeaderboardInfoSerializer(many=True))
    def get(self, request: Request) -> Response:
        return Response(
            [
                {
                    "code": b.code,
                    "name": b.name,
                    "metric": b.metric,
                    "period": b.period,
                    "size": b.size,
                }
                for b in Leaderboard.objects.filter(is_active=True)
            ]
        )


class LeaderboardView(APIView):
    """Top N, the number ranked, and a member's rank, score, percentile and neighbours.

    A member token always sees its own place and other members by display name only.
    """

    permission_classes = [MemberOrScopes]
    required_scopes = (scopes.MEMBERS_READ,)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "period",
                OpenApiTypes.STR,
                description="current (default), previous, or a date YYYY-MM-DD in the period.",
            ),
            OpenApiParameter(
                "around",
                OpenApiTypes.STR,
                description="A member's external_id: their place and neighbours.",
            ),
            OpenApiParameter(
                "neighbours",
                OpenApiTypes.INT,
                description="How many above and below (0-10, default 2).",
            ),
        ],
        responses=LeaderboardViewSerializer,
    )
    def get(self, request: Request, code: str) -> Response:
        board = Leaderboard.objects.filter(code=code, is_active=True).first()
        if board is None:
            raise Http404
        try:
            period = resolve_period(board, request.query_params.get("period"), now=timezone.now())
        except ValueError:
            raise InvalidInput(
                "period is current, previous or a date YYYY-MM-DD.", code="invalid_period"
            ) from None
        neighbours = serializers.IntegerField(min_value=0, max_value=10).run_validation(
            request.query_params.get("neighbours", 2)
        )
        is_member = request.user.is_member
        if is_member:
            member = request.auth
        elif around := request.query_params.get("around"):
            member = member_get(external_id=around)
        else:
            member = None
        view = leaderboard_view(
            board=board, period=period, member_id=member.pk if member else None, around=neighbours
        )
        people = {
            m.pk: m
            for m in Member.objects.filter(
                pk__in=[r.member_id for r in view["top"]]
                + [
                    r.member_id
                    for side in ("above", "below")
                    for r in (view["me"] or {}).get(side, [])
                ]
            )
        }

        def row(ranked):
            person = people.get(ranked.member_id)
            shown = {
                "rank": ranked.rank,
                "score": ranked.score,
                "display_name": person.display_name if person else "",
            }
            if not is_member:
                shown["external_id"] = person.external_id if person else None
            if member is not None:
                shown["is_me"] = ranked.member_id == member.pk
            return shown

        view["top"] = [row(r) for r in view["top"]]
        if view["me"]:
            view["me"]["above"] = [row(r) for r in view["me"]["above"]]
            view["me"]["below"] = [row(r) for r in view["me"]["below"]]
        return Response(view)
