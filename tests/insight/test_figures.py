"""The console's figures against hand-computed answers on crafted histories."""

import math
from datetime import date, datetime, timedelta

import pytest

from loyalty.insight.cohorts import flattening_week, matrix
from loyalty.insight.funnels import funnel_steps
from loyalty.insight.indicators import indicators
from loyalty.insight.job import refresh
from loyalty.insight.views import churn_suggestion
from loyalty.models import Funnel, Program
from loyalty.program.compiled import program_changed
from tests.insight.conftest import CONSOLE_PAGES, at

pytestmark = pytest.mark.django_db

AS_OF_NOW = at(date(2026, 6, 1), 1)  # the job runs early on June 1st: figures up to May 31st


def test_cohort_matrix_counts_each_period_on_its_own(history):
    a = history.member("a", date(2026, 3, 2))  # a Monday: week cohort 2026-03-02
    b = history.member("b", date(2026, 3, 2))
    history.member("c", date(2026, 3, 2))  # never does the key action
    d = history.member("d", date(2026, 3, 11))  # a Wednesday: week cohort 2026-03-09
    for member, day in [
        (a, date(2026, 3, 2)),
        (a, date(2026, 3, 10)),
        (a, date(2026, 3, 24)),  # week 3, not week 2: A is not retained in week 2
        (b, date(2026, 3, 3)),
        (b, date(2026, 3, 17)),
        (d, date(2026, 3, 11)),
        (d, date(2026, 3, 16)),
    ]:
        history.event(member, "check_in", day)
    history.event(b, "browse_item", date(2026, 3, 10))  # not the key action
    history.record()
    refresh(now=AS_OF_NOW)

    weeks = matrix(
        "week", first=date(2026, 3, 1), last=date(2026, 3, 31), as_of=date(2026, 5, 31), periods=5
    )
    assert [(c.start, c.size, c.retained) for c in weeks.cohorts] == [
        (date(2026, 3, 2), 3, [2, 1, 1, 1, 0]),
        (date(2026, 3, 9), 1, [1, 1, 0, 0, 0]),
    ]
    assert weeks.average[:3] == [75.0, 50.0, 25.0]

    days = matrix(
        "day", first=date(2026, 3, 2), last=date(2026, 3, 2), as_of=date(2026, 5, 31), periods=3
    )
    assert [(c.size, c.retained) for c in days.cohorts] == [(3, [1, 1, 0])]
    months = matrix(
        "month", first=date(2026, 3, 1), last=date(2026, 3, 31), as_of=date(2026, 5, 31), periods=3
    )
    assert [(c.size, c.retained) for c in months.cohorts] == [(4, [3, 0, 0])]

    # Seen from earlier, the periods not over yet are blank, not zero.
    early = matrix(
        "week", first=date(2026, 3, 1), last=date(2026, 3, 31), as_of=date(2026, 3, 22), periods=5
    )
    assert early.cohorts[0].retained == [2, 1, 1, None, None]


def test_a_curve_that_flattens_at_week_5_suggests_a_five_week_churn_window(history, admin_client):
    active_per_week = [100, 80, 60, 45, 35, 30, 30, 30, 30, 30]
    joined = date(2026, 1, 5)  # a Monday
    members = [history.member(f"m{i}", joined) for i in range(100)]
    for week, active in enumerate(active_per_week):
        for member in members[:active]:
            history.event(member, "check_in", joined + timedelta(days=7 * week + 1))
    history.record()
    refresh(now=AS_OF_NOW)

    found = churn_suggestion(drop=1.0, weeks=3, silent_share=75, at_risk_share=90)
    assert [round(a, 1) for a in found["average"][:10]] == active_per_week
    assert found["week"] == 5 and found["churned"] == 35
    # Every return here came after exactly 7 days: at risk after 7, silent kept below it.
    assert (found["silent"], found["at_risk"]) == (6, 7)
    # A stricter rule (drops under 0.5 points for 3 weeks) finds the same week; a looser one
    # (under 11 points for 2 weeks) an earlier one: week 3 (45 → 35 → 30).
    assert flattening_week(found["average"], drop=0.5, weeks=3) == 5
    assert flattening_week(found["average"], drop=11, weeks=2) == 3

    # Adopting it is one action, saved in the program's dated history with the operator.
    response = admin_client.post(
        "/admin/console/churn/adopt/",
        {"drop": "1.0", "weeks": "3", "silent_share": "75", "at_risk_share": "90"},
    )
    assert response.status_code == 302
    program = Program.objects.get()
    assert (program.silent_after_days, program.at_risk_after_days, program.churned_after_days) == (
        6,
        7,
        35,
    )
    change = program.history.first()
    assert change.history_user.username == "admin"
    assert change.history_change_reason == "Churn windows adopted from the console"


def test_a_planted_indicator_ranks_first(history):
    program = Program.objects.get_or_create(pk=1)[0]
    program.churned_after_days = 14
    program.save()
    program_changed()
    joined = date(2026, 2, 2)
    retained = [history.member(f"r{i}", joined, channel="app") for i in range(10)]
    churned = [history.member(f"c{i}", joined, channel="app") for i in range(10)]
    for i, member in enumerate(retained):
        history.event(member, "check_in", joined)
        history.event(member, "check_in", joined + timedelta(days=10))  # inside days 7–20
        if i < 8:
            history.event(member, "upload_avatar", joined + timedelta(days=1))
        if i < 5:
            history.event(member, "browse_item", joined + timedelta(days=2))
    for i, member in enumerate(churned):
        history.event(member, "check_in", joined)
        history.event(member, "check_in", joined + timedelta(days=21))  # after the window
        if i < 2:
            history.event(member, "upload_avatar", joined + timedelta(days=1))
        if i < 5:
            history.event(member, "browse_item", joined + timedelta(days=2))
        # Done after the first 7 days: not a feature of the first week.
        history.event(member, "purchase", joined + timedelta(days=8), amount="10.00")
    history.record()
    refresh(now=AS_OF_NOW)

    stayed, left, found = indicators(first=joined, last=joined, within=7)
    assert (stayed, left) == (10, 10)
    top = found[0]
    assert (top.kind, top.code) == ("action", "upload_avatar")
    assert (top.retained_share, top.churned_share, top.lift) == (80.0, 20.0, 4.0)
    # Two-proportion z-test: pooled 0.5, z = 0.6 / sqrt(0.25 * 0.2)
    assert top.p_value == pytest.approx(math.erfc(0.6 / math.sqrt(0.05) / math.sqrt(2)))
    by_code = {(i.kind, i.code): i for i in found}
    assert by_code["action", "browse_item"].lift == 1.0
    assert by_code["attribute", "channel=app"].lift == 1.0
    assert ("action", "purchase") not in by_code
    # Within the first day only, the avatar (day 1) is not yet a feature.
    _, _, first_day = indicators(first=joined, last=joined, within=1)
    assert ("action", "upload_avatar") not in {(i.kind, i.code) for i in first_day}


def test_funnel_conversions_and_median_times(history):
    start = at(date(2026, 3, 2), 8)
    members = [history.member(f"f{i}", start) for i in range(4)]
    hour = timedelta(hours=1)
    history.event(members[0], "check_in", start + hour)
    history.event(members[0], "purchase", start + 5 * hour, amount="1.00")
    history.event(members[1], "check_in", start + 3 * hour)
    history.event(members[2], "purchase", start + 2 * hour, amount="1.00")  # before its step
    history.event(members[2], "check_in", start + 10 * hour)
    history.record()
    funnel = Funnel.objects.create(name="first purchase", steps=["check_in", "purchase"])
    refresh(now=AS_OF_NOW)

    steps = funnel_steps(funnel, first=date(2026, 3, 2), last=date(2026, 3, 2), labels={})
    assert [s.reached for s in steps] == [4, 3, 2]
    assert [s.of_previous for s in steps] == [None, 75.0, pytest.approx(200 / 3)]
    # Check-in after 1 h, 3 h and 10 h; purchase 4 h after the check-in, or already done.
    assert [s.median_seconds for s in steps] == [None, 3 * 3600, 2 * 3600]
    assert (
        funnel_steps(funnel, first=date(2026, 3, 3), last=date(2026, 3, 9), labels={})[0].reached
        == 0
    )


def test_the_console_pages_answer_for_the_crafted_history(history, admin_client):
    member = history.member("x", date(2026, 5, 4))
    history.event(member, "check_in", date(2026, 5, 4))
    history.record()
    Funnel.objects.create(name="check-in", steps=["check_in"])
    refresh(now=datetime.now().astimezone())
    for url in CONSOLE_PAGES:
        assert admin_client.get(url).status_code == 200, url
    page = admin_client.get(
        "/admin/?range=custom&first=2026-05-01&last=2026-05-31"
    ).content.decode()
    assert 'data-figure="New members"' in page
