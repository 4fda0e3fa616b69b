"""The rewards catalog's part of the console: redemptions per reward and day (a source of the
daily figures), and the dashboard's panel of redemptions with low-stock alerts."""

from collections import Counter

from django.db.models import Count, Q, Sum

from loyalty.insight.dashboard import Figures, Range, admin_list, dated
from loyalty.insight.job import Record
from loyalty.insight.sources import Source, Span, local_day
from rewards.models import CouponPool, Redemption, Reward


def redemptions(span: Span) -> Counter:
    figures = Counter()
    made = (
        Redemption.objects.filter(created_at__gte=span.start, created_at__lt=span.end)
        .annotate(d=local_day("created_at"))
        .values("d", "reward_id")
        .annotate(n=Count("id"), points=Sum("points_cost"))
    )
    for row in made:
        figures["redemptions", f"reward:{row['reward_id']}", row["d"]] += row["n"]
        figures["redemptions", "", row["d"]] += row["n"]
        figures["redemptions.points", f"reward:{row['reward_id']}", row["d"]] += row["points"]
    cancelled = (
        Redemption.objects.filter(cancelled_at__gte=span.start, cancelled_at__lt=span.end)
        .annotate(d=local_day("cancelled_at"))
        .values("d", "reward_id")
        .annotate(n=Count("id"))
    )
    for row in cancelled:
        figures["redemptions.cancelled", f"reward:{row['reward_id']}", row["d"]] += row["n"]
    return figures


SOURCE = Source(
    "redemptions", ("redemptions", "redemptions.points", "redemptions.cancelled"), redemptions
)
RECORD = Record("redemption", Redemption, "created_at")


def panel(within: Range) -> tuple[str, dict]:
    """Redemptions per reward in the range and before it; a reward is low on stock when what
    is left would not last another range at this range's pace (or its coupon pool is below
    its threshold)."""
    figures = Figures(within, list(SOURCE.metrics))
    made = figures.by_key("redemptions", "reward:")
    before = figures.by_key("redemptions", "reward:", previous=True)
    points = figures.by_key("redemptions.points", "reward:")
    cancelled = figures.by_key("redemptions.cancelled", "reward:")
    pools = {
        pool.pk: pool
        for pool in CouponPool.objects.annotate(
            free=Count("codes", filter=Q(codes__redemption__isnull=True))
        )
    }
    rows = []
    for reward in Reward.objects.order_by("name"):
        key = str(reward.pk)
        pool = pools.get(reward.pool_id)
        low = (reward.stock is not None and reward.stock <= made.get(key, 0)) or (
            pool is not None and pool.free < pool.low_stock_threshold
        )
        rows.append(
            {
                "label": reward.name,
                "made": made.get(key, 0),
                "before": before.get(key, 0),
                "points": points.get(key, 0),
                "cancelled": cancelled.get(key, 0),
                "stock": reward.stock,
                "low": low,
                "link": admin_list(
                    "rewards.redemption", reward__id__exact=reward.pk, **dated("created_at", within)
                ),
            }
        )
    return "admin/console/_redemptions.html", {"rows": rows}
