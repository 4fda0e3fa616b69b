"""Program drafts and versions: a change to the whole program, edited apart from the live one
(as a program file), compared with it, and published — now or at a scheduled time — in one
transaction. Each publish keeps the program it made as a numbered version, which can be
restored as a new draft.

A publish makes the live program exactly the draft: it loads the draft's file, and switches off
what the file no longer lists (rules, actions, badges, quests, streaks, leaderboards, gifts and
rewards that have ``is_active``). Events are evaluated under the program compiled at one
revision (``compiled``): each is credited wholly under the version before a publish or the one
after, and its answer names the version (``program_version``).
"""

import copy
import difflib
import json
from typing import Any

import yaml
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from core.errors import InvalidInput
from loyalty.models import Program, ProgramDraft, ProgramVersion
from loyalty.program.program_file import SECTIONS, program_export, program_load


def as_file(data: Any) -> Any:
    """Program data as its file holds it: plain JSON types (dates and decimals as text)."""
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


# Keys in the order a reader looks for them; the rest alphabetically. The database keeps a
# definition's mappings in an order of its own (jsonb), so text is always written in this one.
FIRST_KEYS = ("format", "program", "code", "kind", "name", "action")


def _rank(key: str) -> tuple:
    if key in FIRST_KEYS:
        return (0, FIRST_KEYS.index(key), "")
    if key in SECTIONS:
        return (1, SECTIONS.index(key), "")
    return (2, 0, key)


def in_order(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: in_order(data[key]) for key in sorted(data, key=_rank)}
    if isinstance(data, list):
        return [in_order(item) for item in data]
    return data


def as_yaml(data: Any) -> str:
    """The program file as YAML text, its keys in reading order."""
    return yaml.safe_dump(in_order(data), sort_keys=False, allow_unicode=True, width=100)


def live_definition() -> dict[str, Any]:
    return as_file(program_export())


def draft_new(
    *,
    name: str,
    actor=None,
    definition: dict[str, Any] | None = None,
    based_on: ProgramVersion | None = None,
) -> ProgramDraft:
    """A draft holding ``definition`` (the live program's, if none is given)."""
    if based_on is None:
        based_on = ProgramVersion.objects.order_by("-number").first()
    return ProgramDraft.objects.create(
        name=name,
        definition=as_file(definition) if definition is not None else live_definition(),
        based_on=based_on,
        created_by=actor if getattr(actor, "pk", None) else None,
    )


def version_restore(version: ProgramVersion, *, actor=None) -> ProgramDraft:
    """A new draft holding a published version's program: publishing it brings it back."""
    return draft_new(
        name=f"Restore of version {version.number}",
        actor=actor,
        definition=version.definition,
        based_on=version,
    )


class _Checked(Exception):
    """Rolls a trial load back."""


def draft_problems(definition: Any) -> list[str]:
    """What stops the definition from loading, one line each (empty: it loads). It is loaded in
    a transaction that is rolled back, so every reference is checked as a publish would."""
    try:
        with transaction.atomic():
            _apply(copy.deepcopy(definition), actor=None)
            raise _Checked
    except _Checked:
        return []
    except InvalidInput as error:
        return list(error.details or [error.message])


def draft_diff(draft: ProgramDraft) -> list[tuple[str, str]]:
    """The draft against the live program, as a unified diff of their files: (kind, line) with
    kind ``add``, ``remove``, ``hunk`` or ``same``."""
    lines = difflib.unified_diff(
        as_yaml(live_definition()).splitlines(),
        as_yaml(draft.definition).splitlines(),
        fromfile="live",
        tofile=draft.name,
        lineterm="",
        n=3,
    )
    kinds = {"+": "add", "-": "remove", "@": "hunk"}
    return [
        (kinds.get(line[:1], "same"), line) for line in lines if not line.startswith(("+++", "---"))
    ]


def draft_publish(draft: ProgramDraft, *, actor=None, note: str = "") -> ProgramVersion:
    """Make the live program exactly the draft, in one transaction, and keep it as the next
    version. Publishing a published draft again returns its version."""
    with transaction.atomic():
        # One publish at a time: the program's row is the lock.
        Program.objects.select_for_update().filter(pk=1).first()
        draft = ProgramDraft.objects.select_for_update().get(pk=draft.pk)
        if draft.status == ProgramDraft.Status.PUBLISHED and draft.published_as_id:
            return draft.published_as
        _apply(copy.deepcopy(draft.definition), actor=actor)
        number = (ProgramVersion.objects.aggregate(n=Max("number"))["n"] or 0) + 1
        Program.objects.filter(pk=1).update(version=number)
        version = ProgramVersion.objects.create(
            number=number,
            definition=live_definition(),
            note=note or draft.name,
            published_at=timezone.now(),
            published_by=actor if getattr(actor, "pk", None) else None,
        )
        draft.status, draft.published_as, draft.error = ProgramDraft.Status.PUBLISHED, version, ""
        draft.save(update_fields=["status", "published_as", "error", "updated_at"])
    return version


def _apply(definition: Any, *, actor) -> None:
    program_load(data=definition, actor=actor, switch_off_missing=True)


def publish_due_drafts(*, now=None) -> list[ProgramVersion]:
    """Publish the scheduled drafts whose time has come, oldest first (the beat task). A draft
    that no longer loads is marked failed with the reason, and the others go on."""
    now = now or timezone.now()
    published = []
    due = ProgramDraft.objects.filter(
        status=ProgramDraft.Status.SCHEDULED, publish_at__lte=now
    ).order_by("publish_at", "pk")
    for draft in due:
        try:
            published.append(draft_publish(draft, actor=draft.created_by))
        except InvalidInput as error:
            ProgramDraft.objects.filter(pk=draft.pk).update(
                status=ProgramDraft.Status.FAILED,
                error="\n".join(error.details or [error.message]),
            )
    return published
