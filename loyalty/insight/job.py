"""The insight job: keeps the console's aggregates current, a few days at a time.

Each run reads the records added since the last run (by id, per record: events, ledger
entries, members, tier changes, state transitions, badge awards, and what other apps
register), finds the local days they fall on — a late or back-dated event, a reversal dated
at its event, all land on their own day — and recomputes those days' figures from the records
(plus the last ``TRAILING_DAYS``, where records change in place: webhook deliveries, quest
completions, cancellations). Every write replaces what a day held, so a run repeated, or
interrupted and run again, leaves the same rows; ``rebuild`` is a run from nothing and gives
the same figures as any sequence of runs. The summaries over all of history (cohorts, gaps,
indicators, funnels) are then recomputed from the per-member tables, which are small beside
the records.

Each run reads from where the run before the last one stopped: what a run read, the next one
reads again (the recompute makes that harmless), so a row whose transaction was still open
when a run read past its id — a lower id committed after a higher one — is read by the next
run. Only a transaction open across two runs (a day) would be missed; none runs that long.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import models, transaction
from django.utils import timezone

from accounts.models import Member
from loyalty.insight import sources
from loyalty.insight.cohorts import compute_cohorts, compute_gaps
from loyalty.insight.funnels import compute_funnels
from loyalty.insight.indicators import compute_indicators
from loyalty.insight.members import first_times_since, key_active_days, merge_first_times
from loyalty.insight.sources import Span
from loyalty.models import (
    ActivityTransition,
    BadgeAward,
    CohortCell,
    DailyFigure,
    Event,
    FunnelDay,
    IndicatorCell,
    InsightState,
    KeyActiveDay,
    LedgerEntry,
    MemberFirst,
    TierChange,
)
from loyalty.periods import local_date
from loyalty.program.compiled import program_settings

TRAILING_DAYS = 7
SPAN_GAP = 7  # days further apart than this are recomputed as separate spans


@dataclass(frozen=True)
class Record:
    """A table of records only ever added to: its name, and the field that places a row on a
    day."""

    name: str
    model: type[models.Model]
    day_field: str


RECORDS: list[Record] = [
    Record("event", Event, "occurred_at"),
    Record("ledger", LedgerEntry, "effective_at"),
    Record("member", Member, "joined_at"),
    Record("tierchange", TierChange, "created_at"),
    Record("transition", ActivityTransition, "at"),
    Record("badgeaward", BadgeAward, "awarded_at"),
]


def register_record(record: Record) -> None:
    RECORDS[:] = [r for r in RECORDS if r.name != record.name] + [record]


@dataclass
class Run:
    as_of: date
    days: int
    seconds: float


def _changed_days(cursors: dict[str, int]) -> tuple[set[date], dict[str, int]]:
    """The days the records past ``cursors`` fall on, and the last id read of each record."""
    days: set[date] = set()
    seen = dict(cursors)
    for record in RECORDS:
        rows = (
            record.model.objects.filter(pk__gt=cursors.get(record.name, 0))
            .order_by()
            .values_list("pk", record.day_field)
        )
        for pk, at in rows.iterator(chunk_size=10_000):
            days.add(local_date(at))
            seen[record.name] = max(pk, seen.get(record.name, 0))
    return days, seen


def _spans(days: set[date]) -> list[Span]:
    spans: list[Span] = []
    for day in sorted(days):
        if spans and (day - spans[-1].last).days <= SPAN_GAP:
            spans[-1] = Span(spans[-1].first, day)
        else:
            spans.append(Span(day, day))
    return spans


def _figures(span: Span, today: date) -> None:
    for source in sources.SOURCES:
        reach = Span(span.first, min(today, span.last + timedelta(days=source.reach)))
        figures = source.compute(reach)
        rows = [
            DailyFigure(day=day, metric=metric, key=key, value=value)
            for (metric, key, day), value in figures.items()
            if value and reach.first <= day <= reach.last
        ]
        DailyFigure.objects.filter(
            source.owned(), day__gte=reach.first, day__lte=reach.last
        ).delete()
        DailyFigure.objects.bulk_create(rows, batch_size=5_000)


def refresh(*, now=None, progress: Callable[[str], None] | None = None) -> Run:
    """One run of the job (see the module's docstring)."""
    say = progress or (lambda message: None)
    started = time.monotonic()
    now = now or timezone.now()
    today = local_date(now)
    as_of = today - timedelta(days=1)  # the last whole day
    with transaction.atomic():
        state, _ = InsightState.objects.select_for_update().get_or_create(name="cursors")
        cursors = state.data.get("from", {})
        days, seen = _changed_days(cursors)
        days |= {today - timedelta(days=back) for back in range(TRAILING_DAYS)}
        days = {day for day in days if day <= today}
        for span in _spans(days):
            say(f"days {span.first} to {span.last}")
            key_active_days(span)
            _figures(span, today)
        say("first times")
        merge_first_times(first_times_since(cursors))
        say("cohorts")
        compute_cohorts()
        compute_gaps()
        say("indicators")
        compute_indicators(as_of=as_of, window=program_settings().churned_after_days)
        say("funnels")
        compute_funnels()
        # The next run reads from where this one began reading new rows: the last run's end.
        state.data = {"from": state.data.get("seen", cursors), "seen": seen}
        state.save()
        run = Run(as_of=as_of, days=len(days), seconds=time.monotonic() - started)
        InsightState.objects.update_or_create(
            name="run",
            defaults={
                "data": {
                    "as_of": as_of.isoformat(),
                    "finished_at": timezone.now().isoformat(),
                    "days": run.days,
                    "seconds": round(run.seconds, 3),
                }
            },
        )
    return run


def rebuild(*, now=None, progress: Callable[[str], None] | None = None) -> Run:
    """Every aggregate from nothing: the same rows as any sequence of runs."""
    with transaction.atomic():
        for model in (DailyFigure, KeyActiveDay, MemberFirst, CohortCell, IndicatorCell, FunnelDay):
            model.objects.all().delete()
        InsightState.objects.all().delete()
        return refresh(now=now, progress=progress)


def last_run() -> dict:
    state = InsightState.objects.filter(name="run").first()
    return state.data if state else {}
