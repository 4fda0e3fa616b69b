"""The console's pages, inside the admin: the dashboard (the admin's first page), retention
cohorts, churn windows, key indicators and funnels. Operators with the "analyst" group see
them read-only; adopting a churn window needs the right to change the program."""

from datetime import date, timedelta

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import PermissionDenied
from django.db.models import Min
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST

from loyalty.insight.cohorts import flattening_week, gap_quantile, matrix
from loyalty.insight.dashboard import Range, Series, dashboard
from loyalty.insight.funnels import funnel_steps
from loyalty.insight.indicators import WITHIN, indicators
from loyalty.insight.job import last_run
from loyalty.insight.members import period_of
from loyalty.models import (
    Action,
    Badge,
    DailyFigure,
    Funnel,
    IndicatorCell,
    InsightState,
    MemberFirst,
    Program,
    Quest,
    Tier,
)
from loyalty.periods import local_date
from loyalty.program.compiled import program_changed, program_settings

CONSOLE = "loyalty.view_console"
RANGES = (7, 30, 90)


class ConsoleForm(forms.Form):
    """A console page's choices: what the operator asked for, else the page's ``DEFAULTS``
    (also shown as the form's initial values)."""

    DEFAULTS: dict = {}

    def __init__(self, data=None, *, defaults: dict | None = None):
        self.defaults = {**self.DEFAULTS, **(defaults or {})}
        super().__init__(data, initial=self.defaults)

    def chosen(self, name: str):
        value = self.cleaned_data.get(name) if self.is_valid() else None
        return value or self.defaults.get(name)

    def choices_made(self) -> dict:
        return {name: self.chosen(name) for name in self.defaults}


class RangeForm(ConsoleForm):
    """The days shown: the last 7, 30 or 90 up to the figures' last whole day, all of them,
    or any."""

    DEFAULTS = {"range": "30"}

    range = forms.ChoiceField(
        label=_("Range"),
        required=False,
        choices=[
            ("7", _("7 days")),
            ("30", _("30 days")),
            ("90", _("90 days")),
            ("all", _("All history")),
            ("custom", _("Custom")),
        ],
    )
    first = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    last = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def range_of(self, as_of: date) -> Range:
        choice = self.chosen("range")
        first, last = self.chosen("first"), self.chosen("last")
        if choice == "custom" and first and last:
            first, last = sorted((first, last))
            return Range(max(first, last - timedelta(days=730)), last)
        if choice == "all":
            first = DailyFigure.objects.aggregate(first=Min("day"))["first"] or as_of
            return Range(min(first, as_of), as_of)
        days = int(choice) if choice in {str(n) for n in RANGES} else int(self.defaults["range"])
        return Range(as_of - timedelta(days=days - 1), as_of)


def as_of() -> date:
    """The last whole day the figures cover (yesterday, before the job has ever run)."""
    run = last_run()
    if run.get("as_of"):
        return date.fromisoformat(run["as_of"])
    return local_date(timezone.now()) - timedelta(days=1)


def page(request, admin_site, template: str, title, **context) -> TemplateResponse:
    return TemplateResponse(
        request,
        template,
        {
            **admin_site.each_context(request),
            "title": title,
            "run": last_run(),
            "can_change_program": request.user.has_perm("loyalty.change_program"),
            **context,
        },
    )


def labels() -> dict[str, dict[str, str]]:
    """Names of the things features and steps refer to, by kind and code."""
    return {
        MemberFirst.Kind.ACTION: dict(Action.objects.values_list("code", "name")),
        MemberFirst.Kind.BADGE: dict(Badge.objects.values_list("code", "name")),
        MemberFirst.Kind.QUEST: dict(Quest.objects.values_list("code", "name")),
        MemberFirst.Kind.TIER: dict(Tier.objects.values_list("code", "name")),
    }


def dashboard_context(request) -> dict:
    form = RangeForm(request.GET or None)
    within = form.range_of(as_of())
    return {"range_form": form, "within": within, **dashboard(within)}


# --- Cohorts ----------------------------------------------------------------------------------


class CohortForm(RangeForm):
    DEFAULTS = {"range": "90", "grain": "week"}

    grain = forms.ChoiceField(
        label=_("Cohorts by"),
        required=False,
        choices=[("day", _("Join day")), ("week", _("Join week")), ("month", _("Join month"))],
    )
    periods = forms.IntegerField(label=_("Periods"), required=False, min_value=2, max_value=60)


def natural_churn(grain: str, first: date, last: date, within: int = 7) -> dict[date, float]:
    """Each cohort's share of members with no key action in the churn window after their first
    week (the key indicators' outcome, for members whose window is over)."""
    rows = IndicatorCell.objects.filter(
        kind="", within_days=within, joined__gte=first, joined__lte=last
    ).values_list("joined", "churned", "members")
    counts: dict[date, list[int]] = {}
    for joined, churned, members in rows:
        cell = counts.setdefault(period_of(grain, joined), [0, 0])
        cell[churned] += members
    return {cohort: 100 * c[1] / sum(c) for cohort, c in counts.items() if sum(c)}


def cohorts_view(request, admin_site):
    form = CohortForm(request.GET or None)
    grain = form.chosen("grain")
    periods = form.chosen("periods") or {"day": 30, "week": 12, "month": 6}[grain]
    last_day = as_of()
    within = form.range_of(last_day)
    found = matrix(grain, first=within.first, last=within.last, as_of=last_day, periods=periods)
    churn = natural_churn(grain, period_of(grain, within.first), within.last)
    rows = [(cohort, churn.get(cohort.start)) for cohort in found.cohorts]
    curves = Series(
        "retention",
        "line",
        list(range(periods)),
        {
            **{
                str(cohort.start): [None if s is None else round(s, 1) for s in cohort.shares]
                for cohort in found.cohorts[-8:]
            },
            gettext("Average"): [None if a is None else round(a, 1) for a in found.average],
        },
    )
    return page(
        request,
        admin_site,
        "admin/console/cohorts.html",
        _("Retention cohorts"),
        form=form,
        within=within,
        matrix=found,
        rows=rows,
        curves=curves,
        grain=grain,
    )


# --- Churn windows ----------------------------------------------------------------------------


class ChurnForm(ConsoleForm):
    """The rules the windows are suggested by (docs/operators.md)."""

    DEFAULTS = {"drop": 1.0, "weeks": 3, "silent_share": 75, "at_risk_share": 90}

    drop = forms.FloatField(
        label=_("Flat when it drops less than (percentage points a week)"),
        required=False,
        min_value=0.01,
        max_value=100,
    )
    weeks = forms.IntegerField(
        label=_("for this many weeks running"), required=False, min_value=1, max_value=12
    )
    silent_share = forms.IntegerField(
        label=_("Silent after the gap within which this share of returns come (%)"),
        required=False,
        min_value=1,
        max_value=99,
    )
    at_risk_share = forms.IntegerField(
        label=_("At risk after the gap within which this share of returns come (%)"),
        required=False,
        min_value=1,
        max_value=99,
    )


def churn_suggestion(*, drop: float, weeks: int, silent_share: int, at_risk_share: int) -> dict:
    last_day = as_of()
    found = matrix("week", first=date(1970, 1, 1), last=last_day, as_of=last_day, periods=26)
    week = flattening_week(found.average, drop=drop, weeks=weeks)
    gaps = InsightState.objects.filter(name="gaps").values_list("data", flat=True).first() or {}
    churned = week * 7 if week else None
    silent = gap_quantile(gaps, silent_share / 100)
    at_risk = gap_quantile(gaps, at_risk_share / 100)
    if churned is not None:
        at_risk = min(at_risk, churned - 1) if at_risk else None
    if at_risk is not None and silent is not None:
        silent = min(silent, at_risk - 1)
    return {
        "average": found.average,
        "week": week,
        "churned": churned,
        "silent": silent if silent and silent > 0 else None,
        "at_risk": at_risk if at_risk and at_risk > 0 else None,
        "gaps": gaps,
    }


def churn_view(request, admin_site):
    form = ChurnForm(request.GET or None)
    rule = form.choices_made()
    found = churn_suggestion(**rule)
    program = program_settings()
    curve = Series(
        "average",
        "line",
        list(range(len(found["average"]))),
        {
            gettext("Average retention (%)"): [
                None if a is None else round(a, 1) for a in found["average"]
            ]
        },
    )
    drops = [
        None if a is None or b is None else round(a - b, 2)
        for a, b in zip(found["average"], found["average"][1:], strict=False)
    ]
    gaps = sorted((int(g), n) for g, n in found["gaps"].items())[:60]
    gap_series = Series(
        "gaps", "bar", [g for g, _n in gaps], {gettext("Returns"): [n for _g, n in gaps]}
    )
    return page(
        request,
        admin_site,
        "admin/console/churn.html",
        _("Churn windows"),
        form=form,
        rule=rule,
        found=found,
        curve=curve,
        curve_rows=list(zip(curve.labels, found["average"], [None, *drops], strict=False)),
        gap_series=gap_series,
        program=program,
    )


@require_POST
def churn_adopt_view(request, admin_site):
    """Set the program's silent, at-risk and churned windows to the suggested ones: saved as a
    change of the program, dated and with the operator, in its history (the audit log)."""
    if not request.user.has_perm("loyalty.change_program"):
        raise PermissionDenied
    found = churn_suggestion(**ChurnForm(request.POST).choices_made())
    if not (found["churned"] and found["silent"] and found["at_risk"]):
        messages.error(request, gettext("The data does not suggest all three windows yet."))
        return redirect("admin:console_churn")
    program, _created = Program.objects.get_or_create(pk=1)
    program.silent_after_days = found["silent"]
    program.at_risk_after_days = found["at_risk"]
    program.churned_after_days = found["churned"]
    program._change_reason = gettext("Churn windows adopted from the console")
    program.full_clean()
    program.save()
    program_changed()
    messages.success(
        request,
        gettext(
            "Adopted: silent after %(silent)s days, at risk after %(at_risk)s, churned after %(churned)s."
        )
        % found,
    )
    return redirect("admin:console_churn")


# --- Key indicators ---------------------------------------------------------------------------


class IndicatorForm(RangeForm):
    DEFAULTS = {"range": "all", "within": 7}

    within = forms.TypedChoiceField(
        label=_("First days"),
        required=False,
        coerce=int,
        choices=[(n, n) for n in WITHIN],
    )


KIND_LABELS = {
    MemberFirst.Kind.ACTION: _("Did"),
    MemberFirst.Kind.BADGE: _("Earned badge"),
    MemberFirst.Kind.QUEST: _("Completed quest"),
    MemberFirst.Kind.TIER: _("Reached tier"),
    "attribute": _("Attribute"),
}


def indicators_view(request, admin_site):
    form = IndicatorForm(request.GET or None)
    within_days = form.chosen("within")
    within = form.range_of(as_of())
    retained, churned, found = indicators(first=within.first, last=within.last, within=within_days)
    names = labels()
    rows = [
        {
            "kind": KIND_LABELS.get(i.kind, i.kind),
            "name": names.get(i.kind, {}).get(i.code, i.code),
            "code": i.code,
            "indicator": i,
        }
        for i in found
    ]
    top = rows[:10]
    shares = Series(
        "indicators",
        "bar",
        [f"{row['kind']}: {row['name']}" for row in top],
        {
            gettext("Retained who did it"): [round(r["indicator"].retained_share, 1) for r in top],
            gettext("Churned who did it"): [round(r["indicator"].churned_share, 1) for r in top],
        },
    )
    return page(
        request,
        admin_site,
        "admin/console/indicators.html",
        _("Key indicators"),
        shares=shares,
        form=form,
        within=within,
        within_days=within_days,
        retained=retained,
        churned=churned,
        rows=rows,
        window=program_settings().churned_after_days,
    )


# --- Funnels ----------------------------------------------------------------------------------


def funnels_view(request, admin_site):
    form = RangeForm(request.GET or None, defaults={"range": "90"})
    within = form.range_of(as_of())
    names = labels()[MemberFirst.Kind.ACTION]
    funnels = []
    for funnel in Funnel.objects.all():
        steps = funnel_steps(funnel, first=within.first, last=within.last, labels=names)
        steps[0].label = gettext("Joined")
        funnels.append(
            {
                "funnel": funnel,
                "steps": steps,
                "series": Series(
                    f"funnel-{funnel.pk}",
                    "bar",
                    [step.label for step in steps],
                    {gettext("Members"): [step.reached for step in steps]},
                ),
            }
        )
    return page(
        request,
        admin_site,
        "admin/console/funnels.html",
        _("Funnels"),
        form=form,
        within=within,
        funnels=funnels,
    )


def console_urls(admin_site):
    """The console's pages, each behind the admin's login and the console permission."""

    def guarded(view):
        wrapped = permission_required(CONSOLE, raise_exception=True)(
            lambda request: view(request, admin_site)
        )
        return admin_site.admin_view(wrapped)

    return [
        path("console/cohorts/", guarded(cohorts_view), name="console_cohorts"),
        path("console/churn/", guarded(churn_view), name="console_churn"),
        path("console/churn/adopt/", guarded(churn_adopt_view), name="console_churn_adopt"),
        path("console/indicators/", guarded(indicators_view), name="console_indicators"),
        path("console/funnels/", guarded(funnels_view), name="console_funnels"),
    ]
