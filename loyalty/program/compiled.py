"""The program as the engine runs it: compiled once per process and per revision.

Operator changes go through ``earning_rule_publish`` / ``program_changed``, which renew
``Program.revision``; the next event in any process sees the new revision and recompiles.
"""

import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.db.models import Max

from core import sql
from loyalty.models import (
    Action,
    Badge,
    EarningRule,
    EarningRuleVersion,
    KeyAction,
    Leaderboard,
    Program,
    Quest,
    RuleBudget,
    Segment,
    Streak,
    Tier,
)
from loyalty.periods import expiry_at
from loyalty.program.rules import CompiledRule, Multipliers, as_decimal, rule_definition


@dataclass(frozen=True)
class CompiledTier:
    id: int
    code: str
    name: str
    position: int
    growth_threshold: int
    window: str
    window_days: int | None
    grace_days: int
    privileges: tuple[dict, ...]
    multipliers: Multipliers
    translations: dict = field(default_factory=dict)
    colour: str = ""

    def privilege_param(self, kind: str, param: str) -> Decimal | None:
        """The largest numeric ``param`` among this tier's privileges of ``kind``."""
        values = [as_decimal(p["params"].get(param)) for p in self.privileges if p["kind"] == kind]
        values = [v for v in values if v is not None]
        return max(values) if values else None


@dataclass(frozen=True)
class ExpiryRule:
    policy: str
    n: int
    yearly_date: str

    def expires_at(self, earned_at: datetime) -> datetime | None:
        return expiry_at(
            policy=self.policy, n=self.n, yearly_date=self.yearly_date, earned_at=earned_at
        )


@dataclass(frozen=True)
class CompiledProgram:
    revision: uuid.UUID
    # The published version in force (``loyalty.simulation.drafts``); 0 before the first.
    version: int
    unknown_members: str
    default_expiry: ExpiryRule
    reversal_shortfall: str
    actions: dict[str, Action]
    rules_by_action: dict[str, tuple[CompiledRule, ...]]
    tiers: tuple[CompiledTier, ...]
    tiers_by_id: dict[int, CompiledTier] = field(default_factory=dict)
    # Gamification, as read-only model instances: active ones only.
    badges: tuple[Badge, ...] = ()
    streaks_by_action: dict[int, tuple[Streak, ...]] = field(default_factory=dict)
    quests_by_action: dict[int, tuple[Quest, ...]] = field(default_factory=dict)
    leaderboards: tuple[Leaderboard, ...] = ()
    # Dated key action definitions, the latest first.
    key_actions: tuple[KeyAction, ...] = ()
    # Segments as data, for rules that target them: (code, ((field, attribute, operator,
    # value), …)) each (``loyalty.segments.inflow`` evaluates them for one member).
    segments: tuple[tuple[str, tuple[tuple[str, str, str, str], ...]], ...] = ()

    def expiry_for(self, rule: CompiledRule | None) -> ExpiryRule:
        """The rule's own expiry policy, or the program's default."""
        if rule is None or rule.points_expiry == "inherit":
            return self.default_expiry
        return ExpiryRule(rule.points_expiry, rule.points_expiry_n, rule.points_expiry_date)

    def tier(self, tier_id: int | None) -> CompiledTier | None:
        return self.tiers_by_id.get(tier_id) if tier_id is not None else None

    def tiers_above(self, tier_id: int | None) -> list[CompiledTier]:
        current = self.tier(tier_id)
        floor = current.position if current else -1
        return [tier for tier in self.tiers if tier.position > floor]

    def next_tier(self, tier_id: int | None) -> CompiledTier | None:
        above = self.tiers_above(tier_id)
        return above[0] if above else None


_lock = threading.Lock()
_compiled: CompiledProgram | None = None


def program_settings() -> Program:
    program, _ = Program.objects.get_or_create(pk=1)
    return program


def current_revision() -> uuid.UUID:
    found = sql.fetch(f"SELECT revision FROM {Program._meta.db_table} WHERE id = %s", [1])
    if not found:
        return program_settings().revision
    return Program._meta.get_field("revision").to_python(found[0][0])  # text on SQLite


def compiled_program() -> CompiledProgram:
    """The program at its current revision (one indexed read when nothing changed)."""
    return program_at(current_revision())


# The program's revision as a subquery, for a statement that reads it beside its own rows.
REVISION_SQL = f"(SELECT revision FROM {Program._meta.db_table} WHERE id = 1)"


def program_at(revision: uuid.UUID | None) -> CompiledProgram:
    """The program at ``revision``, just read from the database: compiled again only if the
    revision moved since this process last compiled it. None (nothing read): as
    ``compiled_program``."""
    global _compiled
    if revision is None:
        return compiled_program()
    compiled = _compiled
    if compiled is not None and compiled.revision == revision:
        return compiled
    with _lock:
        compiled = _compile_consistent()
        _compiled = compiled
    return compiled


def _compile_consistent() -> CompiledProgram:
    """The program compiled from tables that no publish changed while they were read: the
    revision is read before and after, and a publish between (it renews the revision in its
    own transaction) makes us compile again. So a compiled program is wholly one version,
    never half of the old and half of the new."""
    while True:
        compiled = _compile(current_revision())
        if current_revision() == compiled.revision:
            return compiled


def forget() -> None:
    """Drop this process's compiled program: the next use compiles from the database (a
    simulation's scratch tables, or the live ones after it)."""
    global _compiled
    with _lock:
        _compiled = None


def program_snapshot() -> CompiledProgram:
    """The program as last compiled in this process, without asking the database whether it
    changed: for steps inside a flow that called ``compiled_program`` at its start."""
    return _compiled or compiled_program()


def _multiplier(privileges: list[dict], kind: str) -> Decimal:
    values = [as_decimal(p["params"].get("multiplier")) for p in privileges if p["kind"] == kind]
    values = [v for v in values if v is not None and v > 0]
    return max(values) if values else Decimal(1)


def _compile(revision: uuid.UUID) -> CompiledProgram:
    program = program_settings()
    actions = {action.code: action for action in Action.objects.all()}
    latest = dict(
        EarningRuleVersion.objects.values("rule_id")
        .annotate(latest=Max("version"))
        .values_list("rule_id", "latest")
    )
    versions = EarningRuleVersion.objects.filter(
        rule_id__in=list(latest), version__in=set(latest.values())
    )
    rules: dict[str, list[CompiledRule]] = {}
    for version in versions:
        if latest.get(version.rule_id) != version.version:
            continue
        rule = CompiledRule.from_definition(
            rule_id=version.rule_id,
            version_id=version.pk,
            version=version.version,
            definition=version.definition,
        )
        rules.setdefault(rule.action, []).append(rule)
    tiers = []
    for tier in Tier.objects.prefetch_related("privileges").order_by("position"):
        privileges = [
            {
                "code": p.code,
                "name": p.name,
                "kind": p.kind,
                "params": p.params,
                "description": p.description,
            }
            for p in tier.privileges.all()
        ]
        tiers.append(
            CompiledTier(
                id=tier.pk,
                code=tier.code,
                name=tier.name,
                position=tier.position,
                growth_threshold=tier.growth_threshold,
                window=tier.window,
                window_days=tier.window_days,
                grace_days=tier.grace_days,
                privileges=tuple(privileges),
                translations=tier.translations,
                colour=tier.colour,
                multipliers=Multipliers(
                    growth=_multiplier(privileges, "growth_multiplier"),
                    points=_multiplier(privileges, "points_multiplier"),
                ),
            )
        )
    streaks: dict[int, list[Streak]] = {}
    for streak in Streak.objects.filter(is_active=True):
        streaks.setdefault(streak.action_id, []).append(streak)
    quests: dict[int, list[Quest]] = {}
    for quest in (
        Quest.objects.filter(is_active=True)
        .prefetch_related("steps")
        .select_related("reward_badge", "segment")
    ):
        for action_id in {step.action_id for step in quest.steps.all()}:
            quests.setdefault(action_id, []).append(quest)
    return CompiledProgram(
        revision=revision,
        version=program.version,
        unknown_members=program.unknown_members,
        default_expiry=ExpiryRule(
            program.points_expiry, program.points_expiry_n, program.points_expiry_date
        ),
        reversal_shortfall=program.reversal_shortfall,
        actions=actions,
        rules_by_action={
            code: tuple(sorted(items, key=lambda r: r.sort_key)) for code, items in rules.items()
        },
        tiers=tuple(tiers),
        tiers_by_id={tier.id: tier for tier in tiers},
        badges=tuple(Badge.objects.filter(is_active=True)),
        streaks_by_action={k: tuple(v) for k, v in streaks.items()},
        quests_by_action={k: tuple(v) for k, v in quests.items()},
        leaderboards=tuple(
            Leaderboard.objects.filter(is_active=True).prefetch_related("excluded_members")
        ),
        key_actions=tuple(KeyAction.objects.order_by("-effective_from")),
        segments=tuple(
            (
                segment.code,
                tuple(
                    (c.field, c.attribute, c.operator, c.value) for c in segment.conditions.all()
                ),
            )
            for segment in Segment.objects.prefetch_related("conditions").order_by("code")
        ),
    )


def program_changed() -> None:
    """Tell every process to recompile: call after any change to actions, tiers or privileges."""
    program_settings()
    Program.objects.filter(pk=1).update(revision=uuid.uuid4())


@transaction.atomic
def earning_rule_publish(*, rule: EarningRule, actor=None) -> EarningRuleVersion:
    """Snapshot the rule (with its conditions and caps) as a new version, unless the latest
    version already says the same. Safe to call repeatedly."""
    rule = EarningRule.objects.select_for_update().select_related("action").get(pk=rule.pk)
    definition = rule_definition(rule)
    latest = rule.versions.order_by("-version").first()
    if latest is not None and latest.definition == definition:
        return latest
    version = EarningRuleVersion.objects.create(
        rule=rule,
        version=(latest.version + 1) if latest else 1,
        definition=definition,
        created_by=actor if getattr(actor, "pk", None) else None,
    )
    if rule.budget_points is not None:
        RuleBudget.objects.get_or_create(rule=rule)
    program_changed()
    return version
