"""Retention cohorts and the churn windows the data suggests.

A cohort is the members who joined in one day, Monday-first week or month (local days). A
member is *retained in period N* when they did the key action in the N-th period after the
join period (period 0 is the join period itself) — in that period, not at some time up to it.
A cell is shown once its period is over.
"""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Count

from accounts.models import Member
from loyalty.insight.members import period_of
from loyalty.insight.sources import local_day
from loyalty.models import CohortCell, InsightState, KeyActiveDay

GRAINS = ("day", "week", "month")
SIZE = -1  # the period that holds a cohort's size


def period_end(grain: str, cohort: date, period: int) -> date:
    """The last day of the ``period``-th period after the one starting ``cohort``."""
    if grain == "day":
        return cohort + timedelta(days=period)
    if grain == "week":
        return cohort + timedelta(days=7 * period + 6)
    month = cohort.month - 1 + period + 1
    following = date(cohort.year + month // 12, month % 12 + 1, 1)
    return following - timedelta(days=1)


def compute_cohorts() -> int:
    """Recompute every cohort cell from the members and their key-action days."""
    sizes = Member.objects.annotate(d=local_day("joined_at")).values("d").annotate(n=Count("id"))
    cells: Counter = Counter()
    for row in sizes:
        for grain in GRAINS:
            cells[grain, period_of(grain, row["d"]), SIZE] += row["n"]
    for grain in GRAINS:
        offset = f"{grain}_offset"
        counted = Count("id") if grain == "day" else Count("member", distinct=True)
        rows = KeyActiveDay.objects.values("joined", offset).annotate(n=counted)
        for row in rows:
            if row[offset] >= 0:
                cells[grain, period_of(grain, row["joined"]), row[offset]] += row["n"]
    with transaction.atomic():
        CohortCell.objects.all().delete()
        CohortCell.objects.bulk_create(
            [
                CohortCell(grain=grain, cohort=cohort, period=period, members=n)
                for (grain, cohort, period), n in cells.items()
            ],
            batch_size=5_000,
        )
    return len(cells)


@dataclass
class Cohort:
    start: date
    size: int
    retained: list[int | None]  # members retained in each period; None: not over yet

    @property
    def shares(self) -> list[float | None]:
        return [
            None if n is None else (100 * n / self.size if self.size else 0.0)
            for n in self.retained
        ]


@dataclass
class Matrix:
    grain: str
    cohorts: list[Cohort]
    periods: int
    average: list[float | None]  # percent, weighted by cohort size over the cohorts observed


def matrix(grain: str, *, first: date, last: date, as_of: date, periods: int) -> Matrix:
    """The cohorts joined from ``first`` to ``last``, with their first ``periods`` periods as
    seen on ``as_of`` (the last day the figures cover)."""
    rows = CohortCell.objects.filter(
        grain=grain, cohort__gte=period_of(grain, first), cohort__lte=last, period__lt=periods
    ).values_list("cohort", "period", "members")
    found: dict[date, dict[int, int]] = defaultdict(dict)
    for cohort, period, members in rows:
        found[cohort][period] = members
    cohorts = []
    for start in sorted(found):
        cells = found[start]
        size = cells.get(SIZE, 0)
        if not size:
            continue
        retained = [
            cells.get(n, 0) if period_end(grain, start, n) <= as_of else None
            for n in range(periods)
        ]
        cohorts.append(Cohort(start=start, size=size, retained=retained))
    average = []
    for n in range(periods):
        seen = [c for c in cohorts if c.retained[n] is not None]
        total = sum(c.size for c in seen)
        average.append(100 * sum(c.retained[n] for c in seen) / total if total else None)
    return Matrix(grain=grain, cohorts=cohorts, periods=periods, average=average)


def flattening_week(curve: list[float | None], *, drop: float, weeks: int) -> int | None:
    """The suggested churn window, in weeks: the first week ``w`` (from 1) after which the
    average retention curve drops less than ``drop`` percentage points a week for ``weeks``
    weeks running. None when the curve has not been seen long enough to tell."""
    for w in range(1, len(curve)):
        following = curve[w : w + weeks + 1]
        if len(following) < weeks + 1 or any(p is None for p in following):
            return None
        if all(following[i] - following[i + 1] < drop for i in range(weeks)):
            return w
    return None


def compute_gaps() -> dict[int, int]:
    """How many days members took to come back: the gaps between each member's consecutive
    key-action days, counted over all of history (gap → how often)."""
    gaps: Counter = Counter()
    previous_member, previous_day = None, None
    rows = KeyActiveDay.objects.order_by("member_id", "day").values_list("member_id", "day")
    for member_id, day in rows.iterator(chunk_size=10_000):
        if member_id == previous_member:
            gaps[(day - previous_day).days] += 1
        previous_member, previous_day = member_id, day
    histogram = {str(gap): n for gap, n in sorted(gaps.items())}
    InsightState.objects.update_or_create(name="gaps", defaults={"data": histogram})
    return gaps


def gap_quantile(histogram: dict[str, int], share: float) -> int | None:
    """The smallest gap (days) within which ``share`` of all returns came."""
    total = sum(histogram.values())
    if not total:
        return None
    seen = 0
    for gap, n in sorted((int(g), n) for g, n in histogram.items()):
        seen += n
        if seen >= share * total:
            return gap
    return None
