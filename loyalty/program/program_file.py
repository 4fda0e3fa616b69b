"""The program as a file: export it, and load one idempotently with clear validation errors.

A file holds ``program`` settings (expiry, reversals, activity windows), ``actions``, ``rules``
(with conditions, caps, hold and expiry), ``tiers`` (in order, lowest first, with privileges),
``streaks``, ``badges``, ``quests`` and ``leaderboards``. Loading upserts each by its code,
replaces a rule's conditions and caps and a tier's privileges with the file's, publishes a new
rule version only where something changed, and leaves things the file does not mention alone.
A key the format does not know is refused, naming its path.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from rest_framework import serializers
from rest_framework.validators import UniqueValidator

from core.errors import InvalidInput
from loyalty.models import (
    Action,
    Badge,
    EarningRule,
    Leaderboard,
    Privilege,
    Program,
    Quest,
    QuestStep,
    RuleCap,
    RuleCondition,
    Streak,
    Tier,
)
from loyalty.program.compiled import earning_rule_publish, program_changed, program_settings

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
    "points_expiry",
    "points_expiry_n",
    "points_expiry_date",
]
CONDITION_FIELDS = ["attribute", "operator", "value"]
CAP_FIELDS = ["period", "measure", "limit"]
PRIVILEGE_FIELDS = ["code", "name", "kind", "params", "description"]
TIER_FIELDS = [
    "code",
    "name",
    "growth_threshold",
    "window",
    "window_days",
    "grace_days",
    "description",
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


class _NoUniqueCheck(_Model):
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
        ]


class ActionSerializer(_NoUniqueCheck):
    class Meta:
        model = Action
        fields = ["code", "name", "description", "is_active"]


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


class RuleSerializer(_NoUniqueCheck):
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


class TierSerializer(_NoUniqueCheck):
    privileges = PrivilegeSerializer(many=True, required=False, default=list)

    class Meta:
        model = Tier
        fields = [*TIER_FIELDS, "privileges"]

    def validate(self, data):
        if data.get("window") == Tier.Window.ROLLING_DAYS and not data.get("window_days"):
            raise serializers.ValidationError({"window_days": "A rolling window needs its days."})
        return data


def _code_of(model, **kwargs):
    return serializers.SlugRelatedField(slug_field="code", queryset=model.objects.all(), **kwargs)


class StreakFileSerializer(_NoUniqueCheck):
    action = _code_of(Action)

    class Meta:
        model = Streak
        fields = ["code", "name", "action", "is_active"]


class BadgeFileSerializer(_NoUniqueCheck):
    action = _code_of(Action, required=False, allow_null=True)
    streak = _code_of(Streak, required=False, allow_null=True)
    tier = _code_of(Tier, required=False, allow_null=True)

    class Meta:
        model = Badge
        fields = [
            "code",
            "name",
            "description",
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
    action = _code_of(Action)

    class Meta:
        model = QuestStep
        fields = ["action", "count"]


class QuestFileSerializer(_NoUniqueCheck):
    reward_badge = _code_of(Badge, required=False, allow_null=True)
    steps = QuestStepFileSerializer(many=True)

    class Meta:
        model = Quest
        fields = [
            "code",
            "name",
            "description",
            "scope",
            "reward_points",
            "reward_growth",
            "reward_badge",
            "is_active",
            "position",
            "steps",
        ]


class LeaderboardFileSerializer(_NoUniqueCheck):
    action = _code_of(Action, required=False, allow_null=True)

    class Meta:
        model = Leaderboard
        fields = ["code", "name", "metric", "action", "period", "size", "is_active"]

    def validate(self, data):
        if data.get("metric") == Leaderboard.Metric.ACTION_COUNT and not data.get("action"):
            raise serializers.ValidationError({"action": "An action-count board needs an action."})
        return data


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


def program_export() -> dict[str, Any]:
    """The whole program as plain data, in the file format ``program_load`` reads."""
    rules = EarningRule.objects.select_related("action").prefetch_related("conditions", "caps")
    return {
        "format": FORMAT_VERSION,
        "program": ProgramSettingsSerializer(program_settings()).data,
        "actions": ActionSerializer(Action.objects.order_by("code"), many=True).data,
        "rules": [
            {
                **{name: value for name, value in RuleSerializer(rule).data.items()},
                "action": rule.action.code,
            }
            for rule in rules.order_by("action__code", "priority", "code")
        ],
        "tiers": TierSerializer(Tier.objects.prefetch_related("privileges"), many=True).data,
        **{
            section: serializer_class(model.objects.order_by("code"), many=True).data
            for section, model, serializer_class in GAMIFICATION_SECTIONS
        },
    }


SECTIONS = ("actions", "rules", "tiers", "streaks", "badges", "quests", "leaderboards")


@dataclass
class LoadReport:
    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SECTIONS, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SECTIONS, 0))
    rule_versions: int = 0

    def __str__(self) -> str:
        parts = [
            f"{section}: {self.created[section]} created, {self.updated[section]} updated"
            for section in self.created
        ]
        return "; ".join(parts) + f"; {self.rule_versions} new rule version(s)"


def _upsert(model, code: str, values: dict, report: LoadReport, section: str, **on_create):
    obj = model.objects.filter(code=code).first()
    if obj is None:
        report.created[section] += 1
        return model.objects.create(code=code, **values, **on_create)
    changed = {name: value for name, value in values.items() if getattr(obj, name) != value}
    if changed:
        report.updated[section] += 1
        for name, value in changed.items():
            setattr(obj, name, value)
        obj.save(update_fields=list(changed))
    return obj


@transaction.atomic
def program_load(*, data: Any, actor=None) -> LoadReport:
    """Validate the whole file first, then apply it in one transaction. Loading the same file
    twice changes nothing the second time. Raises ``InvalidInput`` listing every problem."""
    serializer = ProgramFileSerializer(data=data if isinstance(data, dict) else {"format": data})
    if not isinstance(data, dict) or not serializer.is_valid():
        errors = serializer.errors if isinstance(data, dict) else {"file": ["Expected a mapping."]}
        raise InvalidInput(
            "The program file is not valid.", code="invalid_program", details=flatten_errors(errors)
        )
    valid = serializer.validated_data
    report = LoadReport()
    if "program" in valid:
        settings_row = program_settings()
        changed = {k: v for k, v in valid["program"].items() if getattr(settings_row, k) != v}
        if changed:
            for name, value in changed.items():
                setattr(settings_row, name, value)
            settings_row.save(update_fields=list(changed))  # a save, so the audit log keeps it
    for item in valid["actions"]:
        _upsert(Action, item.pop("code"), item, report, "actions")
    actions = {action.code: action for action in Action.objects.all()}
    for item in valid["rules"]:
        conditions, caps = item.pop("conditions"), item.pop("caps")
        item["action"] = actions[item["action"]]
        rule = _upsert(EarningRule, item.pop("code"), item, report, "rules")
        _replace_children(rule.conditions, RuleCondition, conditions, CONDITION_FIELDS, rule=rule)
        _replace_children(rule.caps, RuleCap, caps, CAP_FIELDS, rule=rule)
        before = rule.versions.count()
        earning_rule_publish(rule=rule, actor=actor)
        report.rule_versions += rule.versions.count() - before
    _load_tiers(valid["tiers"], report)
    for section, model, serializer_class in GAMIFICATION_SECTIONS:
        _load_section(section, model, serializer_class, valid[section], report)
    program_changed()
    return report


def _replace_children(manager, model, items: list[dict], fields: list[str], **parent) -> bool:
    """Make the parent's children exactly ``items``; returns whether anything changed."""
    wanted = [model(**parent, **item) for item in items]

    def as_rows(objs) -> list[tuple]:
        return sorted((tuple(getattr(o, name) for name in fields) for o in objs), key=repr)

    if as_rows(manager.all()) == as_rows(wanted):
        return False
    manager.all().delete()
    model.objects.bulk_create(wanted)
    return True


def _load_tiers(items: list[dict], report: LoadReport) -> None:
    if not items:
        return
    codes = [item["code"] for item in items]
    others = Tier.objects.exclude(code__in=codes)
    if others.exists():
        # Positions follow the file's order; a tier it leaves out would have no place.
        raise InvalidInput(
            "The program file must list every tier.",
            code="invalid_program",
            details=[f"tiers: missing {', '.join(others.values_list('code', flat=True))}"],
        )
    original = dict(Tier.objects.values_list("code", "position"))
    target = {item["code"]: position for position, item in enumerate(items)}
    moving = [code for code, position in original.items() if target[code] != position]
    # Park the tiers that move out of the way, so a reorder never collides with the unique
    # position constraint; each then gets its place with a save the audit log keeps.
    for offset, code in enumerate(moving):
        Tier.objects.filter(code=code).update(position=10_000 + offset)
    for item in items:
        privileges = item.pop("privileges")
        code = item.pop("code")
        tier = Tier.objects.filter(code=code).first()
        if tier is None:
            tier = Tier.objects.create(code=code, position=target[code], **item)
            report.created["tiers"] += 1
        else:
            changed = {name: value for name, value in item.items() if getattr(tier, name) != value}
            if code in moving:
                changed["position"] = target[code]
            for name, value in changed.items():
                setattr(tier, name, value)
            if changed:
                tier.save(update_fields=list(changed))
            children = _replace_children(
                tier.privileges, Privilege, privileges, PRIVILEGE_FIELDS, tier=tier
            )
            if changed or children:
                report.updated["tiers"] += 1
            continue
        _replace_children(tier.privileges, Privilege, privileges, PRIVILEGE_FIELDS, tier=tier)


def _load_section(
    section: str, model, serializer_class, items: list[dict], report: LoadReport
) -> None:
    errors = {}
    valid = []
    codes = [item.get("code") for item in items]
    if dupes := sorted({c for c in codes if c and codes.count(c) > 1}):
        errors["codes"] = [f"Codes used twice: {', '.join(dupes)}"]
    for index, item in enumerate(items):
        serializer = serializer_class(data=item)
        if serializer.is_valid():
            valid.append(dict(serializer.validated_data))
        else:
            errors[index] = serializer.errors
        if section == "badges" and serializer.is_valid():
            # Quests may name badges from this same file: save as we go.
            _upsert_plain(model, dict(serializer.validated_data), report, section)
    if errors:
        raise InvalidInput(
            "The program file is not valid.",
            code="invalid_program",
            details=flatten_errors({section: errors}),
        )
    if section == "badges":
        return
    for data in valid:
        steps = data.pop("steps", None)
        counted = report.created[section] + report.updated[section]
        obj = _upsert_plain(model, data, report, section)
        replaced = steps is not None and _replace_children(
            obj.steps, QuestStep, steps, ["action", "count"], quest=obj
        )
        if replaced and report.created[section] + report.updated[section] == counted:
            report.updated[section] += 1


def _upsert_plain(model, data: dict, report: LoadReport, section: str):
    code = data.pop("code")
    obj = model.objects.filter(code=code).first()
    if obj is None:
        report.created[section] += 1
        return model.objects.create(code=code, **data)
    changed = {name: value for name, value in data.items() if getattr(obj, name) != value}
    if changed:
        report.updated[section] += 1
        for name, value in changed.items():
            setattr(obj, name, value)
        obj.save(update_fields=list(changed))
    return obj
