"""The dashboard's figures for a range of days against the range before it, read from the
daily figures (and from the few live tables that hold a state rather than a history: the
members' activity states and tiers, webhook deliveries waiting)."""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Count, Sum
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from loyalty.insight.sources import Span
from loyalty.models import (
    ActivityState,
    Badge,
    DailyFigure,
    EarningRule,
    MemberActivity,
    MemberFirst,
    MemberStanding,
    Quest,
    Tier,
    WebhookDelivery,
)
from loyalty.program.compiled import program_settings


@dataclass(frozen=True)
class Range:
    """The range shown and the one before it, of the same length."""

    first: date
    last: date

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def previous(self) -> "Range":
        return Range(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    @property
    def span(self) -> Span:
        return Span(self.first, self.last)

    def dates(self) -> list[date]:
        return list(self.span.days())


def admin_list(app_model: str, **filters) -> str:
    """The admin's list of ``app_model`` ("app.model") filtered by ``filters``."""
    app, model = app_model.split(".")
    url = reverse(f"admin:{app}_{model}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def dated(field_name: str, within: Range) -> dict:
    return {
        f"{field_name}__gte": within.span.start.isoformat(),
        f"{field_name}__lt": within.span.end.isoformat(),
    }


@dataclass
class Figure:
    label: str
    value: object
    previous: object = None
    link: str = ""

    @property
    def change(self) -> float | None:
        if not isinstance(self.value, int | float | Decimal) or not self.previous:
            return None
        return 100 * (self.value - self.previous) / abs(self.previous)


@dataclass
class Series:
    """A chart and the table beside it: one row per label, one column per named line."""

    id: str
    kind: str  # line, bar
    labels: list
    lines: dict = field(default_factory=dict)  # name → values

    def rows(self):
        return [
            (label, [values[i] for values in self.lines.values()])
            for i, label in enumerate(self.labels)
        ]

    def chart(self) -> dict:
        return {
            "type": self.kind,
            "labels": [str(label) for label in self.labels],
            "datasets": [
                {"label": str(name), "data": values} for name, values in self.lines.items()
            ],
        }


class Figures:
    """The daily figures of some metrics over a range and the range before it, read at once."""

    def __init__(self, within: Range, metrics: list[str]):
        self.within = within
        rows = DailyFigure.objects.filter(
            metric__in=metrics, day__gte=within.previous.first, day__lte=within.last
        ).values_list("metric", "key", "day", "value")
        self.values: dict[tuple[str, str], dict[date, int]] = defaultdict(dict)
        for metric, key, day, value in rows:
            self.values[metric, key][day] = value

    def total(self, metric: str, key: str = "", *, previous: bool = False) -> int:
        within = self.within.previous if previous else self.within
        return sum(
            v for d, v in self.values[metric, key].items() if within.first <= d <= within.last
        )

    def on(self, metric: str, day: date, key: str = "") -> int:
        return self.values[metric, key].get(day, 0)

    def daily(self, metric: str, key: str = "") -> list[int]:
        return [self.on(metric, day, key) for day in self.within.dates()]

    def by_key(self, metric: str, prefix: str, *, previous: bool = False) -> dict[str, int]:
        """The range's totals of ``metric`` for each key starting with ``prefix`` (the key's
        rest: a rule's id, a badge's…)."""
        within = self.within.previous if previous else self.within
        totals: dict[str, int] = {}
        for (found, key), days in self.values.items():
            if found == metric and key.startswith(prefix):
                inside = [v for d, v in days.items() if within.first <= d <= within.last]
                if inside:
                    totals[key[len(prefix) :]] = sum(inside)
        return totals


def totals_until(metric_prefix: str, last: date) -> dict[str, int]:
    """Each metric's whole-program sum over every day up to ``last``: a currency's movements
    add up to what is outstanding at its end, joins to the members there were."""
    rows = (
        DailyFigure.objects.filter(metric__startswith=metric_prefix, key="", day__lte=last)
        .values("metric")
        .annotate(total=Sum("value"))
    )
    return {row["metric"]: row["total"] for row in rows}


def points_until(last: date) -> tuple[int, int]:
    """Points spendable and points pending at the end of ``last``."""
    totals = totals_until("points.", last)
    pending = sum(v for metric, v in totals.items() if metric.endswith(".pending"))
    return sum(totals.values()) - pending, pending


POINT_KINDS = [
    ("points.earn", _("Earned")),
    ("points.bonus", _("Bonuses")),
    ("points.adjust", _("Operator adjustments")),
    ("points.spend", _("Spent")),
    ("points.refund", _("Refunded (cancelled redemptions)")),
    ("points.reverse", _("Reversed")),
    ("points.expire", _("Expired")),
]
ISSUED = ("points.earn", "points.bonus", "points.earn.pending", "points.bonus.pending")

# Panels other apps add to the dashboard (the rewards catalog adds its redemptions):
# each takes the range and returns (template, context) or None.
PANELS: list[Callable[[Range], tuple[str, dict] | None]] = []


def register_panel(panel: Callable[[Range], tuple[str, dict] | None]) -> None:
    if panel not in PANELS:
        PANELS.append(panel)


def dashboard(within: Range) -> dict:
    metrics = (
        ["members.joined", "active.day", "active.week", "active.month", "badges.awarded"]
        + ["quests.completed", "tiers.up", "tiers.down", "states.entered", "webhooks"]
        + [m for m, _label in POINT_KINDS]
        + [f"{m}.pending" for m, _label in POINT_KINDS]
        + ["points.activate", "points.activate.pending"]
    )
    figures = Figures(within, metrics)
    previous = within.previous
    program = program_settings()
    # The totals at the range's end are those before it and the range's own days.
    members_before = totals_until("members.joined", previous.last).get("members.joined", 0)
    members_total = members_before + figures.total("members.joined")

    def average(metric: str, *, before: bool = False) -> float:
        return round(figures.total(metric, previous=before) / within.days, 1)

    members = [
        Figure(
            _("Members"),
            members_total,
            members_before,
            admin_list("accounts.member", joined_at__lt=within.span.end.isoformat()),
        ),
        Figure(
            _("New members"),
            figures.total("members.joined"),
            figures.total("members.joined", previous=True),
            admin_list("accounts.member", **dated("joined_at", within)),
        ),
        Figure(
            _("Active a day (average)"),
            average("active.day"),
            average("active.day", before=True),
            admin_list("loyalty.memberactivity", last_key_day=within.last.isoformat()),
        ),
        Figure(
            _("Active in the last 7 days"),
            figures.on("active.week", within.last),
            figures.on("active.week", previous.last),
            admin_list(
                "loyalty.memberactivity",
                last_key_day__gte=(within.last - timedelta(days=6)).isoformat(),
            ),
        ),
        Figure(
            _("Active in the last 30 days"),
            figures.on("active.month", within.last),
            figures.on("active.month", previous.last),
            admin_list(
                "loyalty.memberactivity",
                last_key_day__gte=(within.last - timedelta(days=29)).isoformat(),
            ),
        ),
    ]
    active = Series(
        "active",
        "line",
        within.dates(),
        {
            _("Daily"): figures.daily("active.day"),
            _("Weekly"): figures.daily("active.week"),
            _("Monthly"): figures.daily("active.month"),
        },
    )

    mix = dict(
        MemberActivity.objects.values_list("state")
        .annotate(n=Count("pk"))
        .values_list("state", "n")
    )
    states = [
        {
            "label": label,
            "now": mix.get(state, 0),
            "entered": figures.total("states.entered", state),
            "entered_before": figures.total("states.entered", state, previous=True),
            "link": admin_list("loyalty.memberactivity", state=state),
            "moves_link": admin_list(
                "loyalty.activitytransition", to_state=state, **dated("at", within)
            ),
        }
        for state, label in ActivityState.choices
    ]

    tier_counts = dict(
        MemberStanding.objects.values_list("tier").annotate(n=Count("pk")).values_list("tier", "n")
    )
    tiers = [
        {
            "label": tier.name,
            "now": tier_counts.get(tier.pk, 0),
            "up": figures.total("tiers.up", f"tier:{tier.pk}"),
            "down": figures.total("tiers.down", f"tier:{tier.pk}"),
            "link": admin_list("loyalty.memberstanding", tier__id__exact=tier.pk),
            "moves_link": admin_list(
                "loyalty.tierchange", to_tier__id__exact=tier.pk, **dated("created_at", within)
            ),
        }
        for tier in Tier.objects.order_by("position")
    ]
    tier_moves = [
        Figure(_("Upgrades"), figures.total("tiers.up"), figures.total("tiers.up", previous=True)),
        Figure(
            _("Downgrades"), figures.total("tiers.down"), figures.total("tiers.down", previous=True)
        ),
    ]

    points = [
        Figure(
            label,
            figures.total(metric) + figures.total(f"{metric}.pending"),
            figures.total(metric, previous=True)
            + figures.total(f"{metric}.pending", previous=True),
            admin_list(
                "loyalty.ledgerentry",
                currency="points",
                kind=metric.split(".")[1],
                **dated("effective_at", within),
            ),
        )
        for metric, label in POINT_KINDS
    ]
    running, held = points_until(previous.last)
    balance, on_hold = [], []
    for day in within.dates():
        running += sum(figures.on(metric, day) for metric, _label in POINT_KINDS) + figures.on(
            "points.activate", day
        )
        held += sum(figures.on(f"{metric}.pending", day) for metric, _label in POINT_KINDS)
        held += figures.on("points.activate.pending", day)
        balance.append(running)
        on_hold.append(held)
    outstanding, pending = balance[-1], on_hold[-1]
    liability = {
        "outstanding": outstanding,
        "pending": pending,
        "point_value": program.point_value,
        "money": program.money,
        "value": (Decimal(outstanding) * program.point_value).quantize(Decimal("0.01")),
        "pending_value": (Decimal(pending) * program.point_value).quantize(Decimal("0.01")),
        "link": reverse("admin:loyalty_program_liability"),
    }
    points_series = Series(
        "points",
        "line",
        within.dates(),
        {
            _("Issued"): [sum(figures.on(m, day) for m in ISSUED) for day in within.dates()],
            _("Spent"): [-figures.on("points.spend", day) for day in within.dates()],
            _("Expired"): [-figures.on("points.expire", day) for day in within.dates()],
            _("Outstanding"): balance,
            _("Pending"): on_hold,
        },
    )

    rule_names = dict(EarningRule.objects.values_list("pk", "name"))
    rules = sorted(
        (
            (
                rule_names.get(int(pk), pk),
                points_,
                admin_list("loyalty.earningrule") + f"{pk}/change/",
            )
            for pk, points_ in figures.by_key("points.earn", "rule:").items()
        ),
        key=lambda row: -row[1],
    )[:10]
    actions = sorted(figures.by_key("points.earn", "action:").items(), key=lambda r: -r[1])[:10]

    badge_holders = dict(
        MemberFirst.objects.filter(kind=MemberFirst.Kind.BADGE)
        .values_list("code")
        .annotate(n=Count("pk"))
        .values_list("code", "n")
    )
    quest_done = dict(
        MemberFirst.objects.filter(kind=MemberFirst.Kind.QUEST)
        .values_list("code")
        .annotate(n=Count("pk"))
        .values_list("code", "n")
    )
    awarded = figures.by_key("badges.awarded", "badge:")
    completed = figures.by_key("quests.completed", "quest:")
    badges = [
        {
            "label": badge.name,
            "in_range": awarded.get(str(badge.pk), 0),
            "holders": badge_holders.get(badge.code, 0),
            "rate": 100 * badge_holders.get(badge.code, 0) / members_total if members_total else 0,
            "link": admin_list(
                "loyalty.badgeaward", badge__id__exact=badge.pk, **dated("awarded_at", within)
            ),
        }
        for badge in Badge.objects.order_by("name")
    ]
    quests = [
        {
            "label": quest.name,
            "in_range": completed.get(str(quest.pk), 0),
            "holders": quest_done.get(quest.code, 0),
            "rate": 100 * quest_done.get(quest.code, 0) / members_total if members_total else 0,
            "link": admin_list("loyalty.quest") + f"{quest.pk}/change/",
        }
        for quest in Quest.objects.order_by("name")
    ]

    webhooks = [
        Figure(
            label,
            figures.total("webhooks", status),
            figures.total("webhooks", status, previous=True),
            admin_list("loyalty.webhookdelivery", status=status, **dated("created_at", within)),
        )
        for status, label in WebhookDelivery.Status.choices
    ]
    waiting = WebhookDelivery.objects.filter(status=WebhookDelivery.Status.PENDING).count()

    panels = [panel(within) for panel in PANELS]
    return {
        "members": members,
        "active": active,
        "states": states,
        "tiers": tiers,
        "tier_moves": tier_moves,
        "points": points,
        "points_series": points_series,
        "liability": liability,
        "rules": rules,
        "actions": actions,
        "badges": badges,
        "quests": quests,
        "webhooks": webhooks,
        "webhooks_waiting": waiting,
        "webhooks_waiting_link": admin_list("loyalty.webhookdelivery", status="pending"),
        "panels": [panel for panel in panels if panel],
    }
