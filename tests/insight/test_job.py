"""The insight job: what a sequence of incremental runs keeps equals a rebuild from nothing,
with late (back-dated) events, reversals, new members and redemptions between runs; and who may
see the console."""

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import Sum
from django.utils import timezone

from loyalty.engine.reversals import event_reverse
from loyalty.insight.dashboard import points_until
from loyalty.insight.job import rebuild, refresh
from loyalty.models import (
    CohortCell,
    DailyFigure,
    Event,
    Funnel,
    FunnelDay,
    IndicatorCell,
    InsightState,
    KeyActiveDay,
    MemberFirst,
    MemberStanding,
)
from rewards.services.redemptions import redeem
from tests.factories import make_reward, make_rule
from tests.insight.conftest import CONSOLE_PAGES, at

pytestmark = pytest.mark.django_db

AGGREGATES = (DailyFigure, KeyActiveDay, MemberFirst, CohortCell, IndicatorCell, FunnelDay)


def snapshot() -> dict:
    rows = {}
    for model in AGGREGATES:
        fields = [f.attname for f in model._meta.concrete_fields if f.attname != "id"]
        rows[model.__name__] = sorted(
            (tuple(str(v) for v in row) for row in model.objects.values_list(*fields)),
        )
    return rows


def test_incremental_runs_equal_a_rebuild(history):
    make_rule("purchase", points_per_unit="1", unit_attribute="amount", growth_per_occurrence=5)
    make_rule("check_in", points_per_occurrence=5, growth_per_occurrence=1)
    reward = make_reward("mug", cost_points=10)
    Funnel.objects.create(name="buy", steps=["check_in", "purchase"])
    # The job runs on three days in turn.
    run = timezone.now()
    d = date(2026, 3, 2)
    a = history.member("a", d, channel="app")
    b = history.member("b", d + timedelta(days=1), channel="web")
    for day in range(5):
        history.event(a, "check_in", d + timedelta(days=day))
    history.event(a, "purchase", d + timedelta(days=2), amount="120.00")
    history.event(b, "check_in", d + timedelta(days=1))
    history.record()
    refresh(now=run)
    second_day = DailyFigure.objects.filter(metric="events", key="", day=d + timedelta(days=1))
    assert second_day.get().value == 2  # a's and b's check-ins
    first = InsightState.objects.get(name="cursors").data
    assert first["from"] == {} and first["seen"]["event"] > 0

    # Between runs: a late event dated weeks back, a refund of the purchase, a new member,
    # a redemption, more days of check-ins.
    history.event(b, "purchase", d + timedelta(days=1), amount="30.00")  # back-dated
    c = history.member("c", d + timedelta(days=20), channel="app")
    history.event(c, "check_in", d + timedelta(days=20))
    history.event(a, "check_in", d + timedelta(days=30))
    history.record()
    purchase = Event.objects.get(member=a, action_code="purchase")
    event_reverse(client=None, event_id=purchase.pk, idempotency_key="refund-1")
    redeem(member=b, reward_code=reward.code, idempotency_key="r-1")
    refresh(now=run + timedelta(days=1))
    assert second_day.get().value == 3  # and the late purchase, counted on its own day

    history.event(c, "purchase", d + timedelta(days=21), amount="15.00")
    history.record()
    refresh(now=run + timedelta(days=2))
    refresh(now=run + timedelta(days=2))  # a run repeated changes nothing
    incremental = snapshot()
    # Each run read from where the run before the last began: the cursors moved on.
    cursors = InsightState.objects.get(name="cursors").data
    assert cursors["from"]["event"] > first["seen"]["event"]

    rebuild(now=run + timedelta(days=2))
    assert snapshot() == incremental
    points = DailyFigure.objects.filter(metric="points.reverse", key="").get()
    assert (points.day, points.value) == (d + timedelta(days=2), -120)
    # What the dashboard says is outstanding and pending is what the members' balances hold.
    today = timezone.localdate(run + timedelta(days=2))
    standings = MemberStanding.objects.aggregate(
        points=Sum("points"), pending=Sum("points_pending")
    )
    spendable, pending = points_until(today)
    assert spendable == standings["points"] > 0
    assert pending == standings["pending"]


def test_an_analyst_sees_the_console_and_changes_nothing(history, client):
    refresh(now=at(date(2026, 6, 1), 1))
    analyst = get_user_model().objects.create_user(
        "ana", password="a-long-passphrase", is_staff=True
    )
    analyst.groups.add(Group.objects.get(name="analyst"))
    client.force_login(analyst)
    for url in [*CONSOLE_PAGES, "/admin/loyalty/ledgerentry/", "/admin/loyalty/program/"]:
        assert client.get(url).status_code == 200, url
    assert b"console-dashboard" in client.get("/admin/").content
    assert client.post("/admin/console/churn/adopt/", {}).status_code == 403
    assert client.post("/admin/loyalty/program/add/", {"name": "x"}).status_code == 403
    assert client.get("/admin/loyalty/funnel/add/").status_code == 403

    outsider = get_user_model().objects.create_user(
        "staff", password="a-long-passphrase", is_staff=True
    )
    client.force_login(outsider)
    assert client.get("/admin/console/cohorts/").status_code == 403
    assert b"console-dashboard" not in client.get("/admin/").content
