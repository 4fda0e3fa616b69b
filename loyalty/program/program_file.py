"""The program as a file: export it, and load one idempotently with clear validation errors.

A file holds ``program`` settings (expiry, reversals, activity windows, the points' value),
``actions``, ``rules`` (with conditions, caps, hold and expiry), ``tiers`` (in order, lowest
first, with privileges), ``segments`` (with conditions), ``streaks``, ``badges``, ``quests``,
``leaderboards``, ``key_actions`` (dated), ``gifts``, and the sections other apps register (the
rewards catalog). Loading upserts each by its code (a key action by its date, a gift by its
kind), replaces a rule's conditions and caps, a tier's privileges and a segment's conditions
with the file's, publishes a new rule version only where something changed, and leaves things
the file does not mention alone. A key the format does not know is refused, naming its path.
Exporting, loading the file into an empty database and exporting again gives the same file.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from core.errors import InvalidInput
from loyalty.models import (
    Action,
    Badge,
    EarningRule,
    Gift,
    KeyAction,
    Leaderboard,
    Privilege,
    Quest,
    QuestStep,
    RuleCap,
    RuleCondition,
    Segment,
    SegmentCondition,
    Streak,
    Tier,
)
from loyalty.program.compiled import earning_rule_publish, program_changed, program_settings
from loyalty.program.file_format import (
    CAP_FIELDS,
    CONDITION_FIELDS,
    FORMAT_VERSION,
    GAMIFICATION_SECTIONS,
    PRIVILEGE_FIELDS,
    SEGMENT_CONDITION_FIELDS,
    ActionSerializer,
    GiftFileSerializer,
    KeyActionFileSerializer,
    ProgramFileSerializer,
    ProgramSettingsSerializer,
    RuleSerializer,
    SegmentFileSerializer,
    TierSerializer,
    flatten_errors,
    valid_items,
)


@dataclass(frozen=True)
class FileSection:
    """A section another app keeps in the program file (the rewards catalog): ``export`` gives
    its data; ``load(data, switch_off_missing)`` applies it inside the file's transaction,
    returning a line for the report, and raises ``InvalidInput`` to refuse the file."""

    name: str
    export: Callable[[], Any]
    load: Callable[[Any, bool], str]


_sections: dict[str, FileSection] = {}


def register_file_section(section: FileSection) -> None:
    _sections[section.name] = section


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
        "segments": SegmentFileSerializer(
            Segment.objects.prefetch_related("conditions").order_by("code"), many=True
        ).data,
        **{
            section: serializer_class(model.objects.order_by("code"), many=True).data
            for section, model, serializer_class in GAMIFICATION_SECTIONS
        },
        "key_actions": KeyActionFileSerializer(
            KeyAction.objects.select_related("action").order_by("effective_from"), many=True
        ).data,
        "gifts": GiftFileSerializer(Gift.objects.order_by("kind"), many=True).data,
        **{name: section.export() for name, section in sorted(_sections.items())},
    }


SECTIONS = (
    "actions",
    "rules",
    "tiers",
    "segments",
    "streaks",
    "badges",
    "quests",
    "leaderboards",
    "key_actions",
    "gifts",
)


@dataclass
class LoadReport:
    created: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SECTIONS, 0))
    updated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SECTIONS, 0))
    rule_versions: int = 0
    others: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [
            f"{section}: {self.created[section]} created, {self.updated[section]} updated"
            for section in self.created
        ]
        return "; ".join([*parts, *self.others]) + f"; {self.rule_versions} new rule version(s)"


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


# The sections whose items can be switched off, by the field that names an item.
SWITCHABLE = (
    ("actions", Action, "code"),
    ("rules", EarningRule, "code"),
    ("streaks", Streak, "code"),
    ("badges", Badge, "code"),
    ("quests", Quest, "code"),
    ("leaderboards", Leaderboard, "code"),
    ("gifts", Gift, "kind"),
)


@transaction.atomic
def program_load(*, data: Any, actor=None, switch_off_missing: bool = False) -> LoadReport:
    """Validate the whole file first, then apply it in one transaction. Loading the same file
    twice changes nothing the second time. Raises ``InvalidInput`` listing every problem.

    With ``switch_off_missing`` (a draft's publish), what a section of the file leaves out is
    switched off (``is_active`` false), so the live program becomes exactly the file; sections
    the file does not have are left alone."""
    listed = {}
    if switch_off_missing and isinstance(data, dict):
        listed = {
            section: {item.get(key) for item in data[section] if isinstance(item, dict)}
            for section, _model, key in SWITCHABLE
            if isinstance(data.get(section), list)
        }
    others = {}
    if isinstance(data, dict):
        others = {name: data[name] for name in _sections if name in data}
        data = {name: value for name, value in data.items() if name not in _sections}
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
    _load_segments(valid["segments"], report)
    for section, model, serializer_class in GAMIFICATION_SECTIONS:
        _load_section(section, model, serializer_class, valid[section], report)
    _load_keyed("key_actions", KeyAction, KeyActionFileSerializer, "effective_from", valid, report)
    _load_keyed("gifts", Gift, GiftFileSerializer, "kind", valid, report)
    for name, value in others.items():
        report.others.append(f"{name}: {_sections[name].load(value, switch_off_missing)}")
    for section, model, key in SWITCHABLE:
        if section in listed:
            _switch_off(model, key, listed[section], report, section, actor)
    program_changed()
    return report


def _switch_off(model, key: str, listed: set, report: LoadReport, section: str, actor) -> None:
    for obj in model.objects.filter(is_active=True).exclude(**{f"{key}__in": listed}):
        obj.is_active = False
        obj.save(update_fields=["is_active"])  # a save, so the audit log keeps it
        report.updated[section] += 1
        if model is EarningRule:
            before = obj.versions.count()
            earning_rule_publish(rule=obj, actor=actor)
            report.rule_versions += obj.versions.count() - before


def _load_segments(items: list[dict], report: LoadReport) -> None:
    for data in valid_items("segments", SegmentFileSerializer, items):
        conditions = data.pop("conditions")
        counted = report.created["segments"] + report.updated["segments"]
        segment = _upsert_plain(Segment, data, report, "segments")
        replaced = _replace_children(
            segment.conditions,
            SegmentCondition,
            conditions,
            SEGMENT_CONDITION_FIELDS,
            segment=segment,
        )
        if replaced and report.created["segments"] + report.updated["segments"] == counted:
            report.updated["segments"] += 1


def _load_keyed(section, model, serializer_class, key: str, valid: dict, report) -> None:
    """A section whose items have no code: upserted by another unique field."""
    for data in valid_items(section, serializer_class, valid[section]):
        obj = model.objects.filter(**{key: data[key]}).first()
        if obj is None:
            model.objects.create(**data)
            report.created[section] += 1
            continue
        changed = {name: value for name, value in data.items() if getattr(obj, name) != value}
        if changed:
            for name, value in changed.items():
                setattr(obj, name, value)
            obj.save(update_fields=list(changed))
            report.updated[section] += 1


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
    for data in valid_items(section, serializer_class, items):
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
