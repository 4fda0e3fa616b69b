"""Referrals in the console: friends joined and qualified per day (a source of the daily
figures), and the dashboard's panel with the referrals waiting for review and the top inviters
of the range."""

from collections import Counter

from django.db.models import Count

from loyalty.insight.dashboard import Figures, Range, admin_list, dated
from loyalty.insight.job import Record
from loyalty.insight.sources import Source, Span, local_day
from rewards.referrals.models import Referral


def referral_figures(span: Span) -> Counter:
    figures = Counter()
    for field, metric in (
        ("joined_at", "referrals.joined"),
        ("qualified_at", "referrals.qualified"),
    ):
        filters = {f"{field}__gte": span.start, f"{field}__lt": span.end}
        if metric == "referrals.qualified":
            filters["state"] = Referral.State.QUALIFIED
        for row in (
            Referral.objects.filter(**filters)
            .annotate(d=local_day(field))
            .values("d")
            .annotate(n=Count("id"))
        ):
            figures[metric, "", row["d"]] += row["n"]
    return figures


SOURCE = Source("referrals", ("referrals.joined", "referrals.qualified"), referral_figures)
# A referral qualifies with an event (the inviter's credit), which marks its day changed.
RECORD = Record("referral", Referral, "joined_at")


def panel(within: Range) -> tuple[str, dict] | None:
    figures = Figures(within, list(SOURCE.metrics))
    held = Referral.objects.filter(state=Referral.State.HELD).count()
    joined = figures.total("referrals.joined")
    if not (joined or held or figures.total("referrals.joined", previous=True)):
        return None  # a program without referrals shows no panel
    qualified = figures.total("referrals.qualified")
    top = list(
        Referral.objects.filter(
            state=Referral.State.QUALIFIED,
            qualified_at__gte=within.span.start,
            qualified_at__lt=within.span.end,
        )
        .values("inviter__external_id", "inviter_id")
        .annotate(n=Count("id"))
        .order_by("-n", "inviter_id")[:5]
    )
    return (
        "admin/console/_referrals.html",
        {
            "joined": joined,
            "joined_before": figures.total("referrals.joined", previous=True),
            "qualified": qualified,
            "qualified_before": figures.total("referrals.qualified", previous=True),
            "held": held,
            "held_link": admin_list("rewards.referral", state__exact=Referral.State.HELD),
            "joined_link": admin_list("rewards.referral", **dated("joined_at", within)),
            "top": top,
        },
    )
