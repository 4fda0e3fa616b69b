"""What the daily figures count, source by source. Each source computes its figures for a span
of local days from the records themselves, so that computing a span again gives the same rows:
the job recomputes the days that changed, the rebuild recomputes every day, and both write the
same figures.

Other apps add their own sources (the rewards catalog adds redemptions) with ``register``.
"""

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from accounts.models import Member
from loyalty.models import (
    ActivityTransition,
    BadgeAward,
    EarningRule,
    Event,
    KeyActiveDay,
    LedgerEntry,
    QuestProgress,
    Tier,
    TierChange,
    WebhookDelivery,
)
from loyalty.periods import program_tz, start_of_day

# (metric, key, day) → value
Figures = Counter


@dataclass(frozen=True)
class Span:
    """Local days ``first`` to ``last``, both included."""

    first: date
    last: date

    @property
    def start(self):
        return start_of_day(self.first)

    @property
    def end(self):
        return start_of_day(self.last + timedelta(days=1))

    def days(self) -> Iterable[date]:
        day = self.first
        while day <= self.last:
            yield day
            day += timedelta(days=1)


@dataclass(frozen=True)
class Source:
    """``metrics``: the metric names (or prefixes ending in ".") this source writes and alone
    owns; ``compute``: its figures over a span."""

    name: str
    metrics: tuple[str, ...]
    compute: Callable[[Span], Figures]
    # A change on a day also changes the figures of this many days after it (the 30-day
    # active members count each day's actives for 29 days more).
    reach: int = 0

    def owned(self) -> Q:
        """The daily figures this source writes: replaced whole when it computes a span."""
        owned = Q()
        for metric in self.metrics:
            owned |= Q(metric__startswith=metric) if metric.endswith(".") else Q(metric=metric)
        return owned


SOURCES: list[Source] = []


def register(source: Source) -> None:
    SOURCES[:] = [s for s in SOURCES if s.name != source.name] + [source]


def local_day(field: str) -> TruncDate:
    return TruncDate(field, tzinfo=program_tz())


def _members(span: Span) -> Figures:
    rows = (
        Member.objects.filter(joined_at__gte=span.start, joined_at__lt=span.end)
        .annotate(d=local_day("joined_at"))
        .values("d")
        .annotate(n=Count("id"))
    )
    return Figures({("members.joined", "", row["d"]): row["n"] for row in rows})


def _counted(rows, day_field: str, key_field: str, metric: str, prefix: str, span: Span):
    """Rows counted per local day of ``day_field``: in all, and by ``key_field``."""
    counts = (
        rows.filter(**{f"{day_field}__gte": span.start, f"{day_field}__lt": span.end})
        .annotate(d=local_day(day_field))
        .values("d", key_field)
        .annotate(n=Count("id"))
    )
    figures = Figures()
    for row in counts:
        figures[metric, "", row["d"]] += row["n"]
        figures[metric, f"{prefix}:{row[key_field]}", row["d"]] += row["n"]
    return figures


def _events(span: Span) -> Figures:
    return _counted(Event.objects, "occurred_at", "action_code", "events", "action", span)


def _active(span: Span) -> Figures:
    """Members who did the key action: that day (DAU), in the 7 days up to it (WAU), in the 30
    days up to it (MAU)."""
    first = span.first - timedelta(days=29)
    days: dict[date, set[int]] = {}
    for member_id, day in KeyActiveDay.objects.filter(
        day__gte=first, day__lte=span.last
    ).values_list("member_id", "day"):
        days.setdefault(day, set()).add(member_id)
    figures = Figures()
    for day in span.days():
        figures["active.day", "", day] = len(days.get(day, ()))
        for metric, width in (("active.week", 7), ("active.month", 30)):
            seen: set[int] = set()
            for back in range(width):
                seen |= days.get(day - timedelta(days=back), set())
            figures[metric, "", day] = len(seen)
    return figures


def _ledger(span: Span) -> Figures:
    """Movements per currency and kind (``points.earn``, ``points.spend.pending``…), whole and
    by rule, by the rule's action, or by source for what no rule credited."""
    actions = dict(EarningRule.objects.values_list("id", "action__code"))
    rows = (
        LedgerEntry.objects.filter(effective_at__gte=span.start, effective_at__lt=span.end)
        .annotate(d=local_day("effective_at"))
        .values("d", "currency", "kind", "pending", "rule_version__rule_id", "source_type")
        .annotate(amount=Sum("amount"), n=Count("id"))
    )
    figures = Figures()
    for row in rows:
        metric = f"{row['currency']}.{row['kind']}" + (".pending" if row["pending"] else "")
        day, amount, rule = row["d"], row["amount"], row["rule_version__rule_id"]
        figures[metric, "", day] += amount
        figures["entries", metric, day] += row["n"]
        if rule is not None:
            figures[metric, f"rule:{rule}", day] += amount
            figures[metric, f"action:{actions.get(rule, '')}", day] += amount
        else:
            figures[metric, f"source:{row['source_type']}", day] += amount
    return figures


def _tiers(span: Span) -> Figures:
    position = dict(Tier.objects.values_list("id", "position"))
    rows = (
        TierChange.objects.filter(created_at__gte=span.start, created_at__lt=span.end)
        .annotate(d=local_day("created_at"))
        .values("d", "from_tier_id", "to_tier_id")
        .annotate(n=Count("id"))
    )
    figures = Figures()
    for row in rows:
        before = position.get(row["from_tier_id"], -1)
        after = position.get(row["to_tier_id"], -1)
        if after == before:
            continue
        metric = "tiers.up" if after > before else "tiers.down"
        figures[metric, "", row["d"]] += row["n"]
        figures[metric, f"tier:{row['to_tier_id'] or ''}", row["d"]] += row["n"]
    return figures


def _states(span: Span) -> Figures:
    rows = (
        ActivityTransition.objects.filter(at__gte=span.start, at__lt=span.end)
        .annotate(d=local_day("at"))
        .values("d", "from_state", "to_state")
        .annotate(n=Count("id"))
    )
    figures = Figures()
    for row in rows:
        figures["states.entered", row["to_state"], row["d"]] += row["n"]
        figures["states.left", row["from_state"], row["d"]] += row["n"]
    return figures


def _badges(span: Span) -> Figures:
    return _counted(BadgeAward.objects, "awarded_at", "badge_id", "badges.awarded", "badge", span)


def _quests(span: Span) -> Figures:
    completed = QuestProgress.objects.filter(completed_at__isnull=False)
    return _counted(completed, "completed_at", "quest_id", "quests.completed", "quest", span)


def _webhooks(span: Span) -> Figures:
    rows = (
        WebhookDelivery.objects.filter(created_at__gte=span.start, created_at__lt=span.end)
        .annotate(d=local_day("created_at"))
        .values("d", "status")
        .annotate(n=Count("id"), tries=Sum("attempts"))
    )
    figures = Figures()
    for row in rows:
        figures["webhooks", row["status"], row["d"]] += row["n"]
        figures["webhooks.attempts", "", row["d"]] += row["tries"]
    return figures


for _source in (
    Source("members", ("members.",), _members),
    Source("events", ("events",), _events),
    Source("active", ("active.",), _active, reach=29),
    Source("ledger", ("points.", "growth.", "entries"), _ledger),
    Source("tiers", ("tiers.",), _tiers),
    Source("states", ("states.",), _states),
    Source("badges", ("badges.",), _badges),
    Source("quests", ("quests.",), _quests),
    Source("webhooks", ("webhooks", "webhooks.attempts"), _webhooks),
):
    register(_source)
