"""Referrals in a real browser: a member invites friends from the member center (English and
Chinese, on a phone); an operator reviews held referrals in the admin, in Chinese."""

import pytest
from django.db import transaction

from rewards.referrals.attribution import referral_attribute
from rewards.referrals.codes import invite_code_for
from rewards.referrals.models import Referral
from tests.browser.conftest import screenshot
from tests.browser.test_admin_language import sign_in
from tests.browser.test_member_center import kept, link
from tests.rewards.referral_setup import member, purchase, referral_program

pytestmark = pytest.mark.django_db(transaction=True)


def friends_of(inviter, *, shared_device: bool = False) -> list[int]:
    code = invite_code_for(member=inviter).code
    ids = []
    for n, name in enumerate(["Lin", "Mei", "Jun"], start=1):
        friend = member(f"friend-{n}", display_name=name)
        signals = {"device_id": "shared" if shared_device else f"dev-{n}"}
        ids.append(referral_attribute(invitee=friend, code=code, signals=signals).referral.pk)
    return ids


@pytest.mark.parametrize("language", ["en", "zh-hans"])
def test_a_member_invites_friends_and_gets_a_new_code(phone, live_server, language):
    referral_program(link_template="https://shop.example/join?ref={code}")
    ann = member("ann", display_name="Ann")
    friends_of(ann)
    with transaction.atomic():
        purchase("friend-1", "88.00")
    context, page = phone(language)
    page.goto(live_server.url + link(ann))
    page.get_by_role("link", name="Invite" if language == "en" else "邀请").click()
    page.wait_for_url("**/m/invite/")
    code = invite_code_for(member=ann).code
    assert page.locator("#invite-code").inner_text() == code
    assert page.locator("#invite-link").input_value().endswith(f"ref={code}")
    counts = page.locator("#invite-counts").inner_text()
    assert counts == (
        "1 qualified of 3 joined" if language == "en" else "已加入 3 位，其中 1 位达标"
    )
    assert page.locator("#friends li").count() == 3
    assert "Lin" not in page.locator("#friends").inner_text()  # masked: L**
    kept(page, f"member-invite-{language}")

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role(
        "button", name="Get a new code" if language == "en" else "换一个新邀请码"
    ).click()
    page.wait_for_function(f"document.querySelector('#invite-code').innerText !== '{code}'")
    assert page.locator("#invite-code").inner_text() == invite_code_for(member=ann).code
    context.close()


def test_an_operator_reviews_held_referrals_in_chinese(page, live_server):
    referral_program()
    ann = member("ann", attributes={"device_id": "shared"})
    held = friends_of(ann, shared_device=True)
    sign_in(page, live_server)
    with page.expect_navigation():
        page.select_option("#language-select", "zh-hans")
    page.goto(f"{live_server.url}/admin/rewards/referral/?state__exact=held")
    assert page.locator("#result_list tbody tr").count() == 3
    assert "共用身份信号" in page.locator("#result_list").inner_text()
    page.check("#action-toggle")
    page.select_option("select[name=action]", "approve")
    screenshot(page, "admin-referrals-review-zh")
    page.click("button[name=index]")
    assert "已通过 3 条邀请" in page.locator(".messagelist").inner_text()
    assert set(Referral.objects.filter(pk__in=held).values_list("state", flat=True)) == {"joined"}

    page.goto(f"{live_server.url}/admin/rewards/referral/tree/{ann.pk}/")
    assert page.locator(".referral-tree li").count() == 3
    screenshot(page, "admin-referral-tree-zh")
