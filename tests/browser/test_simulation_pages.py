"""An operator drafts a program change, reads its difference from the live program, simulates
it over the last month and reads the results with their charts — in a real browser, in English
and in Chinese."""

import pytest
from django.contrib.auth import get_user_model

from loyalty.models import ProgramDraft, SimulationRun
from tests.browser.conftest import screenshot
from tests.browser.test_console import charts_drawn
from tests.loyalty.test_simulation import shop  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in_as_operator(page, live_server) -> None:
    get_user_model().objects.create_superuser("operator", password="a-long-passphrase")
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-passphrase")
    page.click("input[type=submit]")


def test_an_operator_drafts_and_simulates_a_change(page, live_server, shop):  # noqa: F811
    sign_in_as_operator(page, live_server)
    page.goto(f"{live_server.url}/admin/loyalty/programdraft/")
    page.get_by_role("button", name="New draft from the live program").click()
    page.wait_for_selector(".field-difference")
    assert "The same as the live program." in page.inner_text(".field-difference")

    text = page.input_value("#id_text")
    assert "points_per_unit: '1.0000'" in text
    page.fill("#id_name", "Double purchase points")
    page.fill("#id_text", text.replace("points_per_unit: '1.0000'", "points_per_unit: '2.0000'"))
    with page.expect_navigation():
        page.click("input[name=_continue]")
    added = page.locator(".program-diff .diff-add")
    assert added.all_inner_texts() == ["+  points_per_unit: '2.0000'"]
    screenshot(page, "draft-difference")

    page.goto(f"{live_server.url}/admin/loyalty/simulationrun/add/")
    page.select_option("#id_draft", label="Double purchase points")
    with page.expect_navigation():
        page.click("input[name=_save]")  # the worker's task runs inline here (no broker)
    run = SimulationRun.objects.get()
    assert run.status == "done", run.error
    page.goto(f"{live_server.url}/admin/loyalty/simulationrun/{run.pk}/change/")
    assert all(n > 0 for n in charts_drawn(page))
    row = page.locator('table[data-section="rule_points"] tr', has_text="per-yuan")
    assert row.locator("td").all_inner_texts() == ["per-yuan", "2,800", "5,600", "+2,800"]
    # Points only, not growth: nobody's tier moves.
    assert "0 members move up, 0 move down" in page.content()
    screenshot(page, "simulation-results")

    page.goto(f"{live_server.url}/admin/")
    with page.expect_navigation():
        page.select_option("#language-select", "zh-hans")
    page.goto(f"{live_server.url}/admin/loyalty/simulationrun/{run.pk}/change/")
    charts_drawn(page)
    assert "按规则的积分" in page.content()
    screenshot(page, "simulation-results-zh")
    assert ProgramDraft.objects.get().status == "draft"  # simulating publishes nothing
