"""Funnels: steps an operator defines by action (registered → key action → first purchase →
…). Steps are taken in order: a member reaches a step when they reached the one before and
have done its action; the time a step took is from reaching the step before to the first time
of its action, zero when the member had done it before (the step is reached as soon as the
step before is)."""

import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from django.db import transaction
from django.utils.translation import gettext, ngettext

from accounts.models import Member
from loyalty.models import Funnel, FunnelDay, MemberFirst
from loyalty.periods import local_date


def compute_funnels() -> int:
    """Recompute every funnel's days from the members' first times."""
    funnels = list(Funnel.objects.all())
    codes = {code for funnel in funnels for code in funnel.steps}
    firsts: dict[int, dict[str, object]] = defaultdict(dict)
    if codes:
        for member_id, code, at in (
            MemberFirst.objects.filter(kind=MemberFirst.Kind.ACTION, code__in=codes)
            .values_list("member_id", "code", "first_at")
            .iterator(chunk_size=10_000)
        ):
            firsts[member_id][code] = at
    days: dict[tuple[int, date], tuple[list[int], list[list[int]]]] = {}
    if funnels:
        for member_id, joined_at in Member.objects.values_list("pk", "joined_at").iterator(
            chunk_size=10_000
        ):
            done = firsts.get(member_id, {})
            joined = local_date(joined_at)
            for funnel in funnels:
                reached, seconds = days.setdefault(
                    (funnel.pk, joined),
                    ([0] * (len(funnel.steps) + 1), [[] for _ in funnel.steps]),
                )
                reached[0] += 1
                at = joined_at
                for step, code in enumerate(funnel.steps, start=1):
                    first = done.get(code)
                    if first is None:
                        break
                    took = max(0, int((first - at).total_seconds()))
                    at = max(at, first)
                    reached[step] += 1
                    seconds[step - 1].append(took)
    with transaction.atomic():
        FunnelDay.objects.all().delete()
        FunnelDay.objects.bulk_create(
            [
                FunnelDay(funnel_id=funnel_id, joined=joined, reached=reached, seconds=seconds)
                for (funnel_id, joined), (reached, seconds) in days.items()
            ],
            batch_size=1_000,
        )
    return len(days)


@dataclass
class Step:
    label: str
    reached: int
    of_previous: float | None  # percent of the step before
    of_first: float | None  # percent of those who joined
    median_seconds: float | None  # from the step before

    @property
    def median_text(self) -> str:
        return duration_text(self.median_seconds) if self.median_seconds is not None else ""


def duration_text(seconds: float) -> str:
    """A duration as an operator reads it: the two largest units."""
    minutes = int(seconds // 60)
    days, hours, minutes = minutes // 1440, minutes // 60 % 24, minutes % 60
    parts = []
    if days:
        parts.append(ngettext("%d day", "%d days", days) % days)
    if hours:
        parts.append(ngettext("%d hour", "%d hours", hours) % hours)
    if minutes and not days:
        parts.append(ngettext("%d minute", "%d minutes", minutes) % minutes)
    return " ".join(parts[:2]) or gettext("under a minute")


def funnel_steps(funnel: Funnel, *, first: date, last: date, labels: dict[str, str]) -> list[Step]:
    reached = [0] * (len(funnel.steps) + 1)
    seconds: list[list[int]] = [[] for _ in funnel.steps]
    for row_reached, row_seconds in FunnelDay.objects.filter(
        funnel=funnel, joined__gte=first, joined__lte=last
    ).values_list("reached", "seconds"):
        if len(row_reached) != len(reached):
            continue  # computed before the funnel's steps changed; the next run replaces it
        reached = [a + b for a, b in zip(reached, row_reached, strict=True)]
        for step, values in enumerate(row_seconds):
            seconds[step].extend(values)
    steps = []
    for index, count in enumerate(reached):
        before = reached[index - 1] if index else None
        steps.append(
            Step(
                label=labels.get(funnel.steps[index - 1], funnel.steps[index - 1]) if index else "",
                reached=count,
                of_previous=100 * count / before if before else None,
                of_first=100 * count / reached[0] if reached[0] else None,
                median_seconds=statistics.median(seconds[index - 1])
                if index and seconds[index - 1]
                else None,
            )
        )
    return steps
