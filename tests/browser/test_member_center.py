"""A member opens the member center from a link the host app minted, on a phone-sized screen,
in English and in Chinese; a reused link is refused."""

import pytest

from accounts.models import ApiClient, Member
from accounts.scopes import SCOPES
from accounts.services import api_client_create, member_link_issue
from loyalty.engine.events import EventInput, record_event
from loyalty.models import Action, Streak
from loyalty.program.compiled import program_changed
from tests.browser.conftest import screenshot
from tests.factories import (
    give_points,
    make_badge,
    make_leaderboard,
    make_quest,
    make_reward,
    make_rule,
    make_tiers,
)

pytestmark = pytest.mark.django_db(transaction=True)


def serious_violations(page) -> list[str]:
    """axe-core's serious and critical accessibility violations on the page."""
    from axe_playwright_python.sync_playwright import Axe

    found = Axe().run(page).response["violations"]
    return [
        f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']]}"
        for v in found
        if v["impact"] in ("serious", "critical")
    ]


def kept(page, name: str) -> None:
    """A screenshot of the page, and no serious accessibility problem on it."""
    screenshot(page, name)
    assert serious_violations(page) == [], name


def link(member: Member, language: str = "") -> str:
    client = ApiClient.objects.first() or api_client_create(name="app", scopes=list(SCOPES))[0]
    return f"/m/enter?t={member_link_issue(member=member, client=client, language=language).token}"


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_member_opens_the_growth_card_from_a_link(phone, live_server, language):
    make_tiers(("member", 0), ("silver", 1000))
    make_rule("purchase", code="per-yuan", growth_per_unit="1", unit_attribute="amount")
    make_rule("check_in", code="daily", points_per_occurrence=5, growth_per_occurrence=1)
    Action.objects.filter(code="check_in").update(in_member_center=True)
    Streak.objects.create(code="daily", name="Daily", action=Action.objects.get(code="check_in"))
    make_quest("first-steps", "onboarding", [("check_in", 1), ("purchase", 2)], reward_points=50)
    make_badge(
        "first-visit", "action_count", action=Action.objects.get(code="check_in"), threshold=1
    )
    make_leaderboard("top-points", "points", "all_time")
    program_changed()
    make_reward("cinema", codes=3, kind="coupon", cost_points=300, name="Cinema ticket")
    give_points("ann", 320)
    record_event(
        client=None,
        event=EventInput(
            external_id="ann", action="purchase", idempotency_key="p1", attributes={"amount": "400"}
        ),
    )
    ann = Member.objects.get(external_id="ann")
    Member.objects.filter(pk=ann.pk).update(display_name="Ann")
    context, page = phone("en-US")
    try:
        entry = f"{live_server.url}{link(ann, language)}"
        page.goto(entry)
        assert page.url == f"{live_server.url}/m/"  # the token left the address bar
        assert page.inner_text("#points") == "320"
        assert page.get_attribute("html", "lang") == language
        heading = {"en": "Hello, Ann", "zh-hans": "你好，Ann"}[language]
        assert page.inner_text("h1") == heading
        needed = {"en": "600 more growth to Silver", "zh-hans": "再获得 600 成长值即可升至Silver"}
        assert page.inner_text("#next-tier") == needed[language]
        kept(page, f"member-home-{language}")

        page.goto(f"{live_server.url}/m/check-in/")
        kept(page, f"member-check-in-{language}")
        page.evaluate("window.sameDocument = true")
        page.click("#do-check_in")  # htmx posts the form and swaps the page in
        page.wait_for_selector("#done-check_in")
        assert page.evaluate("window.sameDocument === true")  # no full reload
        assert (
            page.locator("#streak-daily")
            .inner_text()
            .startswith({"en": "1 day in a row", "zh-hans": "连续 1 天"}[language])
        )
        page.goto(f"{live_server.url}/m/")
        assert page.inner_text("#points") == "325"  # 320 + the check-in's 5

        page.goto(f"{live_server.url}/m/tasks/")
        assert page.locator("#quest-first-steps .mc-step").all_inner_texts() == [
            {"en": "1 of 1", "zh-hans": "1 / 1"}[language],
            {"en": "1 of 2", "zh-hans": "1 / 2"}[language],
        ]
        kept(page, f"member-tasks-{language}")
        page.goto(f"{live_server.url}/m/badges/")
        assert page.locator("#badge-first-visit").is_visible()  # earned by the check-in
        page.click("#badge-first-visit button")  # share it
        page.wait_for_selector("#badge-first-visit .mc-share-url")
        kept(page, f"member-badges-{language}")
        shared = page.input_value("#badge-first-visit .mc-share-url")
        page.goto(f"{live_server.url}/m/leaderboards/")
        kept(page, f"member-leaderboards-{language}")
        assert page.locator("#top .mc-me").count() == 1
        page.click("#opt")  # leave the leaderboards
        page.wait_for_selector("#top:not(:has(.mc-me))")
        assert Member.objects.get(pk=ann.pk).leaderboard_opt_out

        page.goto(f"{live_server.url}/m/mall/")
        kept(page, f"member-mall-{language}")
        page.click("#reward-cinema .mc-button")
        page.wait_for_selector("#confirm")
        page.click("#confirm")
        page.wait_for_selector("#redemptions code")
        assert page.locator("#redemptions code").inner_text().startswith("CINEMA-")
        assert page.url.endswith("/m/mall/mine/")  # htmx kept the address in step
        kept(page, f"member-redemptions-{language}")
        page.goto(f"{live_server.url}/m/")
        assert page.inner_text("#points") == "25"  # 325 less the ticket's 300
        page.goto(f"{live_server.url}/m/history/")
        assert page.locator("#history li").count() == 3  # the grant, the check-in, the ticket
        kept(page, f"member-history-{language}")

        # A second member's link, in the same browser: their page, never ann's.
        Member.objects.create(external_id="bob", display_name="Bob")
        page.goto(f"{live_server.url}{link(Member.objects.get(external_id='bob'), language)}")
        assert page.inner_text("#points") == "0" and "Ann" not in page.inner_text("h1")
        page.goto(f"{live_server.url}/m/mall/mine/")
        assert page.locator("#redemptions code").count() == 0

        page.goto(shared)  # the public page: the badge and the name only
        assert page.locator("h2").inner_text().startswith("Ann")
        kept(page, f"member-shared-badge-{language}")

        page.goto(entry)  # ann's link again
        assert "m/enter" in page.url and page.locator("#closed-reason").is_visible()
        kept(page, f"member-closed-{language}")
    finally:
        context.close()
