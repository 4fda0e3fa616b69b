"""Segments for the host app's own pushes: the list, and the members of one, cursor-paginated."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import generics, serializers

from accounts import scopes
from accounts.models import Member
from loyalty.models import ActivityState, Segment
from loyalty.segments.filters import segment_get, segment_members


class SegmentSerializer(serializers.ModelSerializer):
    class Meta:
        model = Segment
        fields = ["code", "name", "description", "updated_at"]


class SegmentMemberSerializer(serializers.ModelSerializer):
    tier = serializers.CharField(source="standing.tier.code", allow_null=True, default=None)
    points = serializers.IntegerField(source="standing.points", default=0)
    growth = serializers.IntegerField(source="standing.growth", default=0)
    state = serializers.SerializerMethodField()

    class Meta:
        model = Member
        fields = ["external_id", "display_name", "joined_at", "tier", "points", "growth", "state"]

    @extend_schema_field(serializers.ChoiceField(choices=ActivityState.choices))
    def get_state(self, member: Member) -> str:
        """A member never active has no activity row yet: new."""
        activity = getattr(member, "activity", None)
        return activity.state if activity else ActivityState.NEW


class SegmentListView(generics.ListAPIView):
    """The program's segments, newest first."""

    required_scopes = (scopes.MEMBERS_READ,)
    serializer_class = SegmentSerializer
    queryset = Segment.objects.all()


class SegmentMembersView(generics.ListAPIView):
    """The members of a segment now (every condition met), newest first."""

    required_scopes = (scopes.MEMBERS_READ,)
    serializer_class = SegmentMemberSerializer

    def get_queryset(self):
        members = segment_members(segment_get(self.kwargs["code"]))
        return members.select_related("standing__tier", "activity")
