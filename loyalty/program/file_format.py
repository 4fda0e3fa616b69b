"""The program file's format: each section's fields, validated strictly (a key the format does
not know is refused, naming its path), and errors flattened into readable lines."""

from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from core.errors import InvalidInput
from loyalty.models import (
    Action,
    Badge,
    EarningRule,
    Gift,
    KeyAction,
    Leaderboard,
    Privilege,
    Program,
    Quest,
    QuestStep,
    RuleCap,
    RuleCondition,
    Segment,
    SegmentCondition,
    Streak,
    Tier,
)

FORMAT_VERSION = 1

RULE_FIELDS = [
    "code",
    "action",
    "name",
    "is_active",
    "priority",
    "stop_further_rules",
    "growth_per_occurrence",
    "points_per_occurrence",
    "unit_attribute",
    "unit_size",
    "growth_per_unit",
    "points_per_unit",
    "rounding",
    "apply_tier_multipliers",
    "cooldown_seconds",
    "valid_from",
    "valid_until",
    "new_members_within_days",
    "hold_days",
    "budget_points",
    "points_expiry",
    "points_expiry_n",
    "points_expiry_date",
]
CONDITION_FIELDS = ["attribute", "operator", "value"]
CAP_FIELDS = ["period", "measure", "limit"]
SEGMENT_CONDITION_FIELDS = ["field", "attribute", "operator", "value"]
PRIVILEGE_FIELDS = ["code", "name", "kind", "params", "description"]
TIER_FIELDS = [
    "code",
    "name",
    "growth_threshold",
    "window",
    "window_days",
    "grace_days",
    "description",
    "translations",
    "colour",
]


# --- Validation -------------------------------------------------------------------------------


class _Strict:
    """A key the file format does not know is an error naming its path (``rules[0].
    cooldown_secs: Unknown key.``), never a setting silently ignored."""

    def to_internal_value(self, data):
        unknown = sorted(set(data) - set(self.fields), key=str) if isinstance(data, Mapping) else []
        if unknown:
            raise serializers.ValidationError({key: ["Unknown key."] for key in unknown})
        return super().to_internal_value(data)


class _Model(_Strict, serializers.ModelSerializer):
    pass


class UpsertSerializer(_Model):
    """Codes are upsert keys here, so "already exists" is not an error."""

    def get_validators(self):
        return []

    def build_standard_field(self, field_name, model_field):
        field_class, kwargs = super().build_standard_field(field_name, model_field)
        kwargs["validators"] = [
            v for v in kwargs.get("validators", []) if not isinstance(v, UniqueValidator)
        ]
        return field_class, kwargs


class ProgramSettingsSerializer(_Model):
    class Meta:
        model = Program
        fields = [
            "name",
            "unknown_members",
            "points_expiry",
            "points_expiry_n",
            "points_expiry_date",
            "reversal_shortfall",
            "silent_after_days",
            "at_risk_after_days",
            "churned_after_days",
            "expiring_notice_days",
            "send_emails",
            "point_value",
            "money",
            "brand_colour",
            "brand_text_colour",
            "logo_url",
        ]


class ActionSerializer(UpsertSerializer):
    class Meta:
        model = Action
        fields = ["code", "name", "description", "is_active", "in_member_center"]


class ConditionSerializer(_Model):
    class Meta:
        model = RuleCondition
        fields = CONDITION_FIELDS

    def validate(self, data):
        if data["operator"] == "in" and not isinstance(data["value"], list):
            raise serializers.ValidationError({"value": "The 'in' operator needs a list."})
        return data


class CapSerializer(_Model):
    class Meta:
        model = RuleCap
        fields = CAP_FIELDS


class RuleSerializer(UpsertSerializer):
    action = serializers.SlugField(max_length=64)
    conditions = ConditionSerializer(many=True, required=False, default=list)
    caps = CapSerializer(many=True, required=False, default=list)

    class Meta:
        model = EarningRule
        fields = [*RULE_FIELDS, "conditions", "caps"]

    def validate(self, data):
        start, end = data.get("valid_from"), data.get("valid_until")
        if start and end and end <= start:
            raise serializers.ValidationError({"valid_until": "Must be after valid_from."})
        periods = [(c["period"], c["measure"]) for c in data.get("caps", [])]
        if len(periods) != len(set(periods)):
            raise serializers.ValidationError({"caps": "One cap per period and measure."})
        return data


class PrivilegeSerializer(_Model):
    class Meta:
        model = Privilege
        fields = PRIVILEGE_FIELDS


class TierSerializer(UpsertSerializer):
    privileges = PrivilegeSerializer(many=True, required=False, default=list)

    class Meta:
        model = Tier
        fields = [*TIER_FIELDS, "privileges"]

    def validate(self, data):
        if data.get("window") == Tier.Window.ROLLING_DAYS and not data.get("window_days"):
            raise serializers.ValidationError({"window_days": "A rolling window needs its days."})
        return data


def code_of(model, **kwargs):
    return serializers.SlugRelatedField(slug_field="code", queryset=model.objects.all(), **kwargs)


class StreakFileSerializer(UpsertSerializer):
    action = code_of(Action)

    class Meta:
        model = Streak
        fields = ["code", "name", "action", "is_active"]


class BadgeFileSerializer(UpsertSerializer):
    action = code_of(Action, required=False, allow_null=True)
    streak = code_of(Streak, required=False, allow_null=True)
    tier = code_of(Tier, required=False, allow_null=True)

    class Meta:
        model = Badge
        fields = [
            "code",
            "name",
            "description",
            "translations",
            "image_url",
            "level",
            "criterion",
            "action",
            "streak",
            "tier",
            "threshold",
            "repeatable",
            "secret",
            "bonus_growth",
            "bonus_points",
            "revoke_on_reversal",
            "is_active",
            "position",
        ]

    def validate(self, data):
        needs = {"action_count": "action", "streak_length": "streak", "tier_reached": "tier"}
        needed = needs.get(data.get("criterion"))
        if needed and not data.get(needed):
            raise serializers.ValidationError(
                {needed: f"The {data['criterion']} criterion needs a {needed}."}
            )
        return data


class QuestStepFileSerializer(_Model):
    action = code_of(Action)

    class Meta:
        model = QuestStep
        fields = ["action", "count"]


class QuestFileSerializer(UpsertSerializer):
    reward_badge = code_of(Badge, required=False, allow_null=True)
    segment = code_of(Segment, required=False, allow_null=True)
    steps = QuestStepFileSerializer(many=True)

    class Meta:
        model = Quest
        fields = [
            "code",
            "name",
            "description",
            "translations",
            "scope",
            "window_days",
            "reward_points",
            "reward_growth",
            "reward_badge",
            "segment",
            "is_active",
            "position",
            "steps",
        ]


class LeaderboardFileSerializer(UpsertSerializer):
    action = code_of(Action, required=False, allow_null=True)

    class Meta:
        model = Leaderboard
        fields = ["code", "name", "metric", "action", "period", "size", "is_active"]

    def validate(self, data):
        if data.get("metric") == Leaderboard.Metric.ACTION_COUNT and not data.get("action"):
            raise serializers.ValidationError({"action": "An action-count board needs an action."})
        return data


class SegmentConditionFileSerializer(_Model):
    class Meta:
        model = SegmentCondition
        fields = SEGMENT_CONDITION_FIELDS


class SegmentFileSerializer(UpsertSerializer):
    conditions = SegmentConditionFileSerializer(many=True, required=False, default=list)

    class Meta:
        model = Segment
        fields = ["code", "name", "description", "conditions"]


class KeyActionFileSerializer(_Model):
    action = code_of(Action)

    class Meta:
        model = KeyAction
        fields = ["action", "min_per_day", "effective_from"]


class GiftFileSerializer(UpsertSerializer):
    badge = code_of(Badge, required=False, allow_null=True)

    class Meta:
        model = Gift
        fields = ["kind", "points", "growth", "badge", "is_active"]


# Gamification sections refer to actions, tiers and each other by code, so they are validated
# once the sections before them are in place (inside the same transaction).
GAMIFICATION_SECTIONS = [
    ("streaks", Streak, StreakFileSerializer),
    ("badges", Badge, BadgeFileSerializer),
    ("quests", Quest, QuestFileSerializer),
    ("leaderboards", Leaderboard, LeaderboardFileSerializer),
]


class ProgramFileSerializer(_Strict, serializers.Serializer):
    format = serializers.IntegerField(required=False, default=FORMAT_VERSION)
    program = ProgramSettingsSerializer(required=False)
    actions = ActionSerializer(many=True, required=False, default=list)
    rules = RuleSerializer(many=True, required=False, default=list)
    tiers = TierSerializer(many=True, required=False, default=list)
    streaks = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    badges = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    quests = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    leaderboards = serializers.ListField(
        child=serializers.DictField(), required=False, default=list
    )
    segments = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    key_actions = serializers.ListField(child=serializers.DictField(), required=False, default=list)
    gifts = serializers.ListField(child=serializers.DictField(), required=False, default=list)

    def validate_format(self, value):
        if value != FORMAT_VERSION:
            raise serializers.ValidationError(f"Only format {FORMAT_VERSION} is known.")
        return value

    def validate(self, data):
        for section in ("actions", "rules", "tiers"):
            codes = [item["code"] for item in data[section]]
            if dupes := sorted({c for c in codes if codes.count(c) > 1}):
                raise serializers.ValidationError(
                    {section: f"Codes used twice: {', '.join(dupes)}"}
                )
        known = {a["code"] for a in data["actions"]} | set(
            Action.objects.values_list("code", flat=True)
        )
        missing = sorted({r["action"] for r in data["rules"]} - known)
        if missing:
            raise serializers.ValidationError({"rules": f"Unknown actions: {', '.join(missing)}"})
        thresholds = [t["growth_threshold"] for t in data["tiers"]]
        if thresholds != sorted(thresholds):
            raise serializers.ValidationError(
                {"tiers": "List tiers lowest first, by rising threshold."}
            )
        return data


def flatten_errors(errors: Any, path: str = "") -> list[str]:
    """DRF's nested errors as ``rules[2].caps[0].period: "x" is not a valid choice.`` lines."""
    if isinstance(errors, dict):
        lines = []
        for key, value in errors.items():
            if isinstance(key, int) or str(key).isdigit():
                where = f"{path}[{key}]"
            else:
                where = f"{path}.{key}" if path else str(key)
            lines.extend(flatten_errors(value, where))
        return lines
    if isinstance(errors, list):
        if all(isinstance(item, str) for item in errors):
            return [f"{path or 'file'}: {item}" for item in errors]
        return [
            line
            for index, item in enumerate(errors)
            if item
            for line in flatten_errors(item, f"{path}[{index}]")
        ]
    return [f"{path or 'file'}: {errors}"]


# --- Export and load --------------------------------------------------------------------------


def valid_items(
    section: str,
    serializer_class,
    items: Any,
    *,
    message: str = "The program file is not valid.",
    code: str = "invalid_program",
) -> list[dict]:
    """Each item of a section through its serializer: their validated data, or
    ``InvalidInput`` naming every problem's path (``badges[2].threshold: …``); codes used
    twice in the section are one of the problems."""
    if not isinstance(items, list):
        raise InvalidInput(message, code=code, details=[f"{section}: Expected a list."])
    valid, errors = [], {}
    codes = [item.get("code") for item in items if isinstance(item, dict)]
    if dupes := sorted({c for c in codes if c and codes.count(c) > 1}):
        errors["codes"] = [f"Codes used twice: {', '.join(dupes)}"]
    for index, item in enumerate(items):
        serializer = serializer_class(data=item)
        if serializer.is_valid():
            valid.append(dict(serializer.validated_data))
        else:
            errors[index] = serializer.errors
    if errors:
        raise InvalidInput(message, code=code, details=flatten_errors({section: errors}))
    return valid
