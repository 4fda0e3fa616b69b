from django.conf import settings
from rest_framework import serializers

from accounts.models import Member
from core.api.fields import InstantField, JsonObjectField


class MemberWriteSerializer(serializers.Serializer):
    """Body of ``PUT /members/{external_id}``: every field optional, given ones are set."""

    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    joined_at = InstantField(required=False)
    birthday = serializers.DateField(required=False, allow_null=True)
    attributes = JsonObjectField(required=False)
    language = serializers.ChoiceField(
        choices=settings.LANGUAGES,
        required=False,
        allow_blank=True,
        help_text="The member center's language for this member (empty: their browser's).",
    )
    leaderboard_opt_out = serializers.BooleanField(required=False)


class MemberSerializer(serializers.ModelSerializer):
    email = serializers.CharField(help_text="An e-mail address, or empty.")
    language = serializers.ChoiceField(
        choices=settings.LANGUAGES,
        allow_blank=True,
        read_only=True,
        help_text="The member center's language for this member (empty: their browser's).",
    )

    class Meta:
        model = Member
        fields = [
            "external_id",
            "display_name",
            "email",
            "joined_at",
            "birthday",
            "attributes",
            "language",
            "leaderboard_opt_out",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class MemberSelfUpdateSerializer(serializers.Serializer):
    """What members may change about themselves."""

    display_name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    leaderboard_opt_out = serializers.BooleanField(required=False)


class MemberTokenRequestSerializer(serializers.Serializer):
    ttl_seconds = serializers.IntegerField(
        required=False,
        min_value=60,
        max_value=24 * 60 * 60,
        help_text=f"Lifetime in seconds (default {settings.LOYALTY_MEMBER_TOKEN_TTL}).",
    )
    language = serializers.ChoiceField(
        choices=settings.LANGUAGES,
        required=False,
        allow_blank=True,
        help_text="The member center's language for the link (empty: the member's own setting, "
        "else their browser's).",
    )


class MemberTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_at = serializers.DateTimeField()
    external_id = serializers.CharField()
    url = serializers.URLField(
        help_text="A link to the member center for this member: it opens once, within "
        f"{settings.LOYALTY_MEMBER_LINK_TTL} seconds, and starts a session of the member's own."
    )
    url_expires_at = serializers.DateTimeField()
