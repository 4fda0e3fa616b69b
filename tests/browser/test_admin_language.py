"""An operator signs in to the admin in a real browser and switches it to Chinese and back."""

import pytest
from django.contrib.auth import get_user_model

from loyalty.demo import load_demo_program
from tests.browser.conftest import screenshot

pytestmark = pytest.mark.django_db(transaction=True)


def sign_in(page, live_server) -> None:
    get_user_model().objects.create_superuser("operator", "", "a-long-passphrase")
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "a-long-passphrase")
    page.click("input[type=submit]")


def test_an_operator_switches_the_admin_to_chinese_and_back(page, live_server):
    load_demo_program()
    sign_in(page, live_server)
    assert page.locator("#site-name").inner_text() == "Loyalty program administration"

    with page.expect_navigation():  # the switcher submits itself on change
        page.select_option("#language-select", "zh-hans")

    assert page.locator("#site-name").inner_text() == "会员成长体系管理后台"
    assert page.get_by_role("link", name="成长规则").first.is_visible()
    assert "体系：哪些行为计分、计多少" in page.content()
    screenshot(page, "admin-index-zh")
    page.get_by_role("link", name="成长规则").first.click()
    page.get_by_role("link", name="增加 成长规则").click()  # Django's own "Add", in Chinese
    screenshot(page, "admin-rule-form-zh")
    assert page.locator("label[for=id_points_per_occurrence]").inner_text().startswith("每次积分")

    with page.expect_navigation():
        page.select_option("#language-select", "en")
    label = page.locator("label[for=id_points_per_occurrence]").inner_text()
    assert label.startswith("Points per occurrence")
