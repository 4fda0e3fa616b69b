"""The referral settings as the ``referrals`` section of the program file."""

from typing import Any

from django.core.exceptions import ValidationError
from rest_framework import serializers

from core.errors import InvalidInput
from loyalty.models import Action
from loyalty.program.file_format import code_of
from rewards.referrals.models import ReferralProgram
from rewards.referrals.program import referral_actions_ensure, referral_settings_changed


class ReferralFileSerializer(serializers.ModelSerializer):
    qualifying_action = code_of(Action, required=False, allow_null=True)

    class Meta:
        model = ReferralProgram
        fields = ReferralProgram.SETTINGS


def referrals_export() -> dict[str, Any]:
    found = ReferralProgram.objects.select_related("qualifying_action").filter(pk=1).first()
    return ReferralFileSerializer(found or ReferralProgram()).data


def _refuse(problems: list[str]):
    return InvalidInput("The program file is not valid.", code="invalid_program", details=problems)


def referrals_load(data: Any, switch_off_missing: bool) -> str:
    """Apply the section (inside the file's transaction): the fields it names, the others as
    they were. The system actions are made first, so the file's rules may name them."""
    if not isinstance(data, dict):
        raise _refuse(["referrals: Expected a mapping."])
    referral_actions_ensure()
    current = ReferralProgram.objects.filter(pk=1).first() or ReferralProgram(pk=1)
    serializer = ReferralFileSerializer(current, data=data, partial=True)
    if not serializer.is_valid():
        raise _refuse(
            [
                f"referrals.{field}: {message}"
                for field, messages in serializer.errors.items()
                for message in messages
            ]
        )
    for field, value in serializer.validated_data.items():
        setattr(current, field, value)
    try:
        current.full_clean()
    except ValidationError as error:
        raise _refuse(
            [
                f"referrals.{field}: {message}"
                for field, messages in error.message_dict.items()
                for message in messages
            ]
        ) from None
    current.save()
    referral_settings_changed()
    return "on" if current.is_active else "off"
