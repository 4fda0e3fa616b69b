"""An analyst opens every console page in a real browser, in English and in Chinese: the numbers
shown are the database's, and every chart drew."""

from datetime import date, timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from accounts.models import Member
from loyalty.demo import load_demo_program, simulate_members
from loyalty.insight.indicators import indicators
from loyalty.insight.job import refresh
from loyalty.models import KeyActiveDay
from loyalty.periods import start_of_day
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)

PAGES = [
    ("dashboard", "/admin/", {"en": "Members and activity", "zh-hans": "会员与活跃"}),
    ("cohorts", "/admin/console/cohorts/", {"en": "Retention cohorts", "zh-hans": "留存同期群"}),
    ("churn", "/admin/console/churn/", {"en": "Churn windows", "zh-hans": "流失周期"}),
    ("indicators", "/admin/console/indicators/", {"en": "Key indicators", "zh-hans": "关键性指标"}),
    ("funnels", "/admin/console/funnels/", {"en": "Funnels", "zh-hans": "漏斗"}),
]


def sign_in_as_analyst(page, live_server) -> None:
    analyst = get_user_model().objects.create_user(
        "analyst", password="a-long-passphrase", is_staff=True
    )
    analyst.groups.add(Group.objects.get(name="analyst"))
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "analyst")
    page.fill("#id_password", "a-long-passphrase")
    page.click("input[type=submit]")


def charts_drawn(page) -> list[int]:
    page.wait_for_function(
        "document.querySelectorAll('canvas[data-series]:not([data-drawn])').length === 0"
    )
    return [
        int(n)
        for n in page.eval_on_selector_all(
            "canvas[data-series]", "all => all.map(c => c.dataset.drawn)"
        )
    ]


def card(page, label: str) -> int:
    return int(page.locator(f'[data-figure="{label}"] .value').inner_text().replace(",", ""))


def test_an_analyst_reads_the_console_in_both_languages(page, live_server):
    load_demo_program()
    simulate_members(members=60, days=70)
    run = refresh()
    sign_in_as_analyst(page, live_server)

    for language in ("en", "zh-hans"):
        if language != "en":
            with page.expect_navigation():
                page.select_option("#language-select", language)
        for name, url, heading in PAGES:
            page.goto(f"{live_server.url}{url}")
            assert heading[language] in page.content(), (name, language)
            drawn = charts_drawn(page)
            assert drawn and all(n > 0 for n in drawn), (name, language, drawn)
            screenshot(page, f"console-{name}-{language}")

    # The numbers shown are the database's (the dashboard's last 30 days, in English again).
    with page.expect_navigation():
        page.select_option("#language-select", "en")
    page.goto(f"{live_server.url}/admin/")
    first = run.as_of - timedelta(days=29)
    end = start_of_day(run.as_of + timedelta(days=1))
    assert card(page, "Members") == Member.objects.filter(joined_at__lt=end).count()
    joined = Member.objects.filter(joined_at__gte=start_of_day(first), joined_at__lt=end)
    assert card(page, "New members") == joined.count()
    last_week = KeyActiveDay.objects.filter(
        day__gt=run.as_of - timedelta(days=7), day__lte=run.as_of
    )
    assert card(page, "Active in the last 7 days") == last_week.values("member").distinct().count()
    page.click('[data-figure="New members"] .value a')  # a number opens the list behind it
    assert f"{joined.count()} " in page.locator("#changelist-form .paginator").inner_text()

    page.goto(f"{live_server.url}/admin/console/indicators/")
    retained, churned, found = indicators(first=date(1970, 1, 1), last=run.as_of, within=7)
    assert (
        page.locator("#population")
        .inner_text()
        .startswith(f"{retained} retained, {churned} churned")
    )
    assert page.locator("#indicators tbody tr").first.get_attribute("data-code") == found[0].code
