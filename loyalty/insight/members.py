"""The two per-member summaries the console counts from: the days each member did the key
action (``KeyActiveDay``) and the first time each member did each thing (``MemberFirst``).
Both are written by the insight job only, from the records, and each write is a recompute:
doing it twice gives the same rows."""

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from django.db import transaction
from django.db.models import Min

from accounts.models import Member
from loyalty.insight.sources import Span
from loyalty.models import (
    BadgeAward,
    Event,
    KeyAction,
    KeyActiveDay,
    MemberFirst,
    QuestProgress,
    TierChange,
)
from loyalty.periods import local_date

BATCH = 5_000


def period_of(grain: str, day: date) -> date:
    """The first day of the day, Monday-first week or month holding ``day``."""
    if grain == "week":
        return day - timedelta(days=day.weekday())
    if grain == "month":
        return day.replace(day=1)
    return day


def offsets(joined: date, day: date) -> tuple[int, int, int]:
    """How far ``day`` lies from the join day: in days, calendar weeks and calendar months."""
    weeks = (period_of("week", day) - period_of("week", joined)).days // 7
    months = (day.year - joined.year) * 12 + day.month - joined.month
    return (day - joined).days, weeks, months


def _join_days(member_ids: Iterable[int]) -> dict[int, date]:
    ids = list(set(member_ids))
    joined = {}
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        for pk, at in Member.objects.filter(pk__in=chunk).values_list("pk", "joined_at"):
            joined[pk] = local_date(at)
    return joined


def key_active_days(span: Span) -> None:
    """Recompute the key-action days of ``span``: a member's day counts when they did the key
    action as often as the definition in force asks (the definition of each event's time,
    as the event flow counts it)."""
    definitions = list(KeyAction.objects.order_by("-effective_from"))
    counts: dict[tuple[int, date], int] = defaultdict(int)
    needed: dict[tuple[int, date], int] = {}
    if definitions:
        events = Event.objects.filter(
            occurred_at__gte=span.start,
            occurred_at__lt=span.end,
            action_id__in={d.action_id for d in definitions},
        ).values_list("member_id", "action_id", "occurred_at")
        for member_id, action_id, at in events.iterator(chunk_size=BATCH):
            definition = next((d for d in definitions if d.effective_from <= at), None)
            if definition is None or definition.action_id != action_id:
                continue
            key = (member_id, local_date(at))
            counts[key] += 1
            needed[key] = definition.min_per_day
    active = [key for key, n in counts.items() if n >= needed[key]]
    joined = _join_days(member_id for member_id, _ in active)
    rows = []
    for member_id, day in active:
        if member_id not in joined:
            continue
        day_offset, week_offset, month_offset = offsets(joined[member_id], day)
        rows.append(
            KeyActiveDay(
                member_id=member_id,
                day=day,
                joined=joined[member_id],
                day_offset=day_offset,
                week_offset=week_offset,
                month_offset=month_offset,
            )
        )
    with transaction.atomic():
        KeyActiveDay.objects.filter(day__gte=span.first, day__lte=span.last).delete()
        KeyActiveDay.objects.bulk_create(rows, batch_size=BATCH)


def _firsts(kind: str, rows: Iterable[tuple[int, str, datetime]]) -> dict:
    firsts: dict[tuple[int, str, str], datetime] = {}
    for member_id, code, at in rows:
        if at is None:
            continue
        key = (member_id, kind, str(code))
        if key not in firsts or at < firsts[key]:
            firsts[key] = at
    return firsts


# Records only ever added to, read past their cursor: (kind, cursor name, rows, code, time).
FIRSTS_ADDED = (
    (MemberFirst.Kind.ACTION, "event", Event.objects, "action_code", "occurred_at"),
    (MemberFirst.Kind.BADGE, "badgeaward", BadgeAward.objects, "badge__code", "awarded_at"),
    (
        MemberFirst.Kind.TIER,
        "tierchange",
        TierChange.objects.filter(to_tier__isnull=False),
        "to_tier__code",
        "created_at",
    ),
)


def _earliest(rows, code: str, at: str):
    return rows.values("member_id", code).annotate(at=Min(at)).values_list("member_id", code, "at")


def first_times_since(cursors: dict[str, int]) -> dict:
    """The first times among the records past ``cursors`` (record name → last id read):
    events, badge awards and tier changes are only ever added. Quest completions are read
    whole (a progress row is completed in place; there are few)."""
    firsts = {}
    for kind, cursor, rows, code, at in FIRSTS_ADDED:
        firsts |= _firsts(kind, _earliest(rows.filter(pk__gt=cursors.get(cursor, 0)), code, at))
    completed = QuestProgress.objects.filter(completed_at__isnull=False)
    firsts |= _firsts(MemberFirst.Kind.QUEST, _earliest(completed, "quest__code", "completed_at"))
    return firsts


def merge_first_times(firsts: dict) -> int:
    """Keep the earlier of what is stored and what was found; returns the rows written."""
    if not firsts:
        return 0
    members = {member_id for member_id, _, _ in firsts}
    joined = _join_days(members)
    stored = {}
    ids = list(members)
    for start in range(0, len(ids), BATCH):
        for row in MemberFirst.objects.filter(member_id__in=ids[start : start + BATCH]):
            stored[row.member_id, row.kind, row.code] = row
    new, changed = [], []
    for (member_id, kind, code), at in firsts.items():
        if member_id not in joined:
            continue
        offset = (local_date(at) - joined[member_id]).days
        row = stored.get((member_id, kind, code))
        if row is None:
            new.append(
                MemberFirst(
                    member_id=member_id, kind=kind, code=code, first_at=at, offset_days=offset
                )
            )
        elif at < row.first_at:
            row.first_at, row.offset_days = at, offset
            changed.append(row)
    with transaction.atomic():
        MemberFirst.objects.bulk_create(new, batch_size=BATCH)
        MemberFirst.objects.bulk_update(changed, ["first_at", "offset_days"], batch_size=BATCH)
    return len(new) + len(changed)
