"""Key indicators: what members who stayed did in their first days that members who churned
did not.

For a member whose outcome is known, *churned* means no key action in the churn window (the
program's ``churned_after_days``) that follows their first ``N`` days, i.e. on none of days
``N`` to ``N + window - 1`` after joining; *retained* means at least one. Their features are
what they did within their first ``N`` days (days 0 to ``N - 1``): each action, each badge
earned, each quest completed, each tier reached, and each value of a member attribute the
host sends (known from joining). A feature's *lift* is its share among the retained over its
share among the churned; its significance is the two-sided p-value of a two-proportion z-test.
"""

import math
from bisect import bisect_left
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.db import transaction
from django.db.models import Sum

from accounts.models import Member
from loyalty.models import IndicatorCell, KeyActiveDay, MemberFirst
from loyalty.periods import local_date

WITHIN = (1, 3, 7, 14, 30)  # the first-N-days choices the console offers
ATTRIBUTE = "attribute"
MAX_ATTRIBUTE_VALUES = 30  # an attribute with more distinct values (an id, a phone) is skipped


def _attribute_features(attributes: dict) -> list[str]:
    return [
        f"{key}={value}"[:120]
        for key, value in attributes.items()
        if isinstance(value, str | int | bool) and not isinstance(value, float)
    ]


def compute_indicators(*, as_of: date, window: int) -> int:
    """Recompute every indicator cell as of ``as_of`` with a churn window of ``window`` days."""
    members: dict[int, tuple[date, list[str]]] = {}
    values: dict[str, set] = defaultdict(set)
    for pk, joined_at, attributes in Member.objects.values_list(
        "pk", "joined_at", "attributes"
    ).iterator(chunk_size=10_000):
        features = _attribute_features(attributes or {})
        members[pk] = (local_date(joined_at), features)
        for feature in features:
            values[feature.split("=", 1)[0]].add(feature)
    too_many = {key for key, seen in values.items() if len(seen) > MAX_ATTRIBUTE_VALUES}

    active: dict[int, list[int]] = defaultdict(list)
    for member_id, offset in (
        KeyActiveDay.objects.order_by("member_id", "day_offset")
        .values_list("member_id", "day_offset")
        .iterator(chunk_size=10_000)
    ):
        active[member_id].append(offset)
    firsts: dict[int, list[tuple[int, str, str]]] = defaultdict(list)
    for member_id, kind, code, offset in MemberFirst.objects.values_list(
        "member_id", "kind", "code", "offset_days"
    ).iterator(chunk_size=10_000):
        firsts[member_id].append((offset, kind, code))

    cells: Counter = Counter()
    for member_id, (joined, attributes) in members.items():
        offsets = active.get(member_id, ())
        for within in WITHIN:
            if joined + timedelta(days=within + window - 1) > as_of:
                continue  # the outcome window is not over yet
            at = bisect_left(offsets, within)
            churned = not (at < len(offsets) and offsets[at] < within + window)
            cells[joined, within, "", "", churned] += 1
            for feature in attributes:
                if feature.split("=", 1)[0] not in too_many:
                    cells[joined, within, ATTRIBUTE, feature, churned] += 1
            for offset, kind, code in firsts.get(member_id, ()):
                if 0 <= offset < within:
                    cells[joined, within, kind, code, churned] += 1
    with transaction.atomic():
        IndicatorCell.objects.all().delete()
        IndicatorCell.objects.bulk_create(
            [
                IndicatorCell(
                    joined=joined,
                    within_days=within,
                    kind=kind,
                    code=code,
                    churned=churned,
                    members=n,
                )
                for (joined, within, kind, code, churned), n in cells.items()
            ],
            batch_size=5_000,
        )
    return len(cells)


@dataclass
class Indicator:
    kind: str
    code: str
    retained_with: int
    churned_with: int
    retained: int
    churned: int

    @property
    def retained_share(self) -> float:
        return 100 * self.retained_with / self.retained if self.retained else 0.0

    @property
    def churned_share(self) -> float:
        return 100 * self.churned_with / self.churned if self.churned else 0.0

    @property
    def lift(self) -> float | None:
        """Share among the retained over share among the churned (None: no churned had it)."""
        return self.retained_share / self.churned_share if self.churned_share else None

    @property
    def p_value(self) -> float:
        """Two-sided p-value of a two-proportion z-test (pooled)."""
        n1, n2 = self.retained, self.churned
        if not n1 or not n2:
            return 1.0
        pooled = (self.retained_with + self.churned_with) / (n1 + n2)
        spread = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
        if spread == 0:
            return 1.0
        z = (self.retained_with / n1 - self.churned_with / n2) / spread
        return math.erfc(abs(z) / math.sqrt(2))

    def rank_key(self) -> tuple:
        # Lift with half a member added to each side, so that a feature no churned member had
        # ranks by how many retained members had it rather than as infinity.
        smoothed = ((self.retained_with + 0.5) / (self.retained + 1)) / (
            (self.churned_with + 0.5) / (self.churned + 1)
        )
        return (-smoothed, self.p_value)


def indicators(*, first: date, last: date, within: int) -> tuple[int, int, list[Indicator]]:
    """For members who joined from ``first`` to ``last`` (outcome known): how many stayed, how
    many churned, and every feature ranked by lift."""
    sums = (
        IndicatorCell.objects.filter(within_days=within, joined__gte=first, joined__lte=last)
        .values("kind", "code", "churned")
        .annotate(n=Sum("members"))
    )
    counts: dict[tuple[str, str], dict[bool, int]] = defaultdict(lambda: {True: 0, False: 0})
    for row in sums:
        counts[row["kind"], row["code"]][row["churned"]] += row["n"]
    base = counts.pop(("", ""), {True: 0, False: 0})
    retained, churned = base[False], base[True]
    found = [
        Indicator(
            kind=kind,
            code=code,
            retained_with=n[False],
            churned_with=n[True],
            retained=retained,
            churned=churned,
        )
        for (kind, code), n in counts.items()
    ]
    found.sort(key=Indicator.rank_key)
    return retained, churned, found
