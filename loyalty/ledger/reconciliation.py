"""Proving the books: cached balances against the ledger, lots against their movements, and
the liability the program owes its members."""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Case, Count, Exists, F, IntegerField, OuterRef, Q, Sum, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from core import sql
from loyalty.ledger.entries import BUCKETS, bucket_deltas
from loyalty.models import EventReversal, LedgerEntry, MemberStanding, PointLot, SourceType
from loyalty.periods import local_date


@dataclass
class VerifyReport:
    members: int = 0
    entries: int = 0
    points_owed: int = 0  # open shortfalls: spent points reversals could not take back yet
    members_owing: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches


def verify_ledger(*, chunk_size: int = 2000, max_reported: int = 1000) -> VerifyReport:
    """For every member: each cached bucket equals the sum of their ledger entries; their
    spendable lots add up to ``max(points, 0)`` and pending lots to ``points_pending``; each lot's
    remainder is its amount less its movements; what they owe is their reversals' open
    shortfalls, and each reversal's open shortfall is its shortfall less the repayments.
    Streams members in primary-key chunks, summing in the database, so memory stays flat
    however large the ledger."""
    report = VerifyReport()

    def mismatch(member_id: int, check: str, cached: int, actual: int) -> None:
        if len(report.mismatches) < max_reported:
            report.mismatches.append(
                {"member_id": member_id, "check": check, "cached": cached, "actual": actual}
            )

    shortfalls = _shortfalls()
    last = 0
    while True:
        standings = list(
            MemberStanding.objects.filter(pk__gt=last)
            .order_by("pk")
            .values("pk", *BUCKETS, "points_owed")[:chunk_size]
        )
        if not standings:
            break
        last = standings[-1]["pk"]
        ids = [s["pk"] for s in standings]
        entries = defaultdict(list)
        for row in (
            LedgerEntry.objects.filter(sql.AnyOf("member_id", ids))
            .values("member_id", "currency", "kind", "pending")
            .annotate(
                positive=Case(
                    When(amount__gt=0, then=Value(1)), default=Value(0), output_field=IntegerField()
                ),
            )
            .annotate(total=Sum("amount"), count=Sum(Value(1)))
        ):
            # Grouped by sign too: whether an adjustment counts as earned or spent depends on it.
            entries[row["member_id"]].append(
                (row["currency"], row["kind"], row["pending"], row["total"])
            )
            report.entries += row["count"]
        lots = defaultdict(lambda: {True: 0, False: 0})
        for row in (
            PointLot.objects.filter(sql.AnyOf("member_id", ids))
            .values("member_id", "pending")
            .annotate(total=Sum("remaining"))
        ):
            lots[row["member_id"]][row["pending"]] = row["total"] or 0
        for standing in standings:
            member_id = standing["pk"]
            expected = bucket_deltas(entries.get(member_id, []))
            for bucket in BUCKETS:
                if standing[bucket] != expected[bucket]:
                    mismatch(member_id, bucket, standing[bucket], expected[bucket])
            if lots[member_id][False] != max(standing["points"], 0):
                mismatch(
                    member_id, "spendable lots", max(standing["points"], 0), lots[member_id][False]
                )
            if lots[member_id][True] != standing["points_pending"]:
                mismatch(
                    member_id, "pending lots", standing["points_pending"], lots[member_id][True]
                )
        _check_debts(shortfalls, {s["pk"]: s["points_owed"] for s in standings}, report, mismatch)
        broken_lots = (
            PointLot.objects.filter(sql.AnyOf("member_id", ids))
            .annotate(moved=Coalesce(Sum("movements__amount"), 0))
            .filter(~Q(remaining=F("amount") - F("moved")))
            .values("pk", "member_id", "remaining", "amount", "moved")
        )
        for lot in broken_lots:
            mismatch(
                lot["member_id"],
                f"lot {lot['pk']} remaining",
                lot["remaining"],
                lot["amount"] - lot["moved"],
            )
        report.members += len(standings)
    # One anti-join over the ledger (no ordering, so DISTINCT is on the member alone).
    orphans = (
        LedgerEntry.objects.order_by()
        .filter(~Exists(MemberStanding.objects.filter(pk=OuterRef("member_id"))))
        .values_list("member_id", flat=True)
        .distinct()
    )
    for member_id in orphans[:max_reported]:
        mismatch(member_id, "ledger entries without a standing", 0, 1)
    return report


def _shortfalls() -> dict[int, list[tuple[int, int, int, int]]]:
    """Every reversal that fell short, by member, with what was repaid of it: read once (they
    are few), so the chunks of members need no query of their own."""
    by_member: dict[int, list[tuple[int, int, int, int]]] = defaultdict(list)
    reversals = EventReversal.objects.filter(shortfall__gt=0).values_list(
        "pk", "event__member_id", "shortfall", "shortfall_open"
    )
    rows = list(reversals.iterator(chunk_size=2000))
    repaid = (
        dict(
            LedgerEntry.objects.filter(
                sql.AnyOf("member_id", sorted({member_id for _, member_id, _, _ in rows})),
                source_type=SourceType.SHORTFALL,
            )
            .values("source_id")
            .annotate(total=Sum("amount"))
            .values_list("source_id", "total")
        )
        if rows
        else {}
    )
    for pk, member_id, shortfall, shortfall_open in rows:
        by_member[member_id].append(
            (pk, shortfall, shortfall_open, shortfall + (repaid.get(str(pk)) or 0))
        )
    return by_member


def _check_debts(
    shortfalls: dict[int, list[tuple[int, int, int, int]]],
    owed: dict[int, int],
    report: VerifyReport,
    mismatch,
) -> None:
    """What each member owes is the sum of their reversals' open shortfalls, and each of those
    is its shortfall less the repayments posted against it."""
    for member_id, cached in owed.items():
        open_total = 0
        for pk, _, shortfall_open, expected_open in shortfalls.get(member_id, ()):
            open_total += shortfall_open
            if shortfall_open != expected_open:
                mismatch(member_id, f"reversal {pk} open shortfall", shortfall_open, expected_open)
        if cached != open_total:
            mismatch(member_id, "points_owed", cached, open_total)
        if cached:
            report.points_owed += cached
            report.members_owing += 1


def liability_report(*, months: int = 12, at: datetime | None = None) -> dict[str, Any]:
    """What the program owes: spendable points outstanding, points pending, balances below
    zero, and spendable points expiring in each of the next ``months`` local months; and what
    members owe it (open shortfalls of reversals)."""
    at = at or timezone.now()
    totals = MemberStanding.objects.aggregate(
        outstanding=Coalesce(Sum("points", filter=Q(points__gt=0)), 0),
        negative=Coalesce(Sum("points", filter=Q(points__lt=0)), 0),
        pending=Coalesce(Sum("points_pending"), 0),
        members=Coalesce(Sum(Value(1)), 0),
        owed=Coalesce(Sum("points_owed"), 0),
        owing=Count("pk", filter=Q(points_owed__gt=0)),
    )
    by_month: dict[str, int] = {}
    lots = PointLot.objects.filter(pending=False, remaining__gt=0)
    overdue = 0
    for expires_at, remaining in (
        lots.filter(expires_at__isnull=False).values_list("expires_at", "remaining").iterator()
    ):
        if expires_at <= at:
            overdue += remaining
            continue
        # Points expiring at local midnight on the 1st belong to the month before.
        day = local_date(expires_at - timedelta(microseconds=1))
        key = f"{day.year:04d}-{day.month:02d}"
        by_month[key] = by_month.get(key, 0) + remaining
    months_ahead = []
    year, month = local_date(at).year, local_date(at).month
    for _ in range(months):
        key = f"{year:04d}-{month:02d}"
        months_ahead.append({"month": key, "points": by_month.pop(key, 0)})
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return {
        "as_of": at,
        "members": totals["members"],
        "points_outstanding": totals["outstanding"],
        "points_pending": totals["pending"],
        "negative_balances": totals["negative"],
        "points_owed": totals["owed"],
        "members_owing": totals["owing"],
        "expiring_by_month": months_ahead,
        "expiring_later": sum(by_month.values()),
        "overdue_for_expiry": overdue,
        "never_expiring": lots.filter(expires_at__isnull=True).aggregate(
            s=Coalesce(Sum("remaining"), 0)
        )["s"],
    }
