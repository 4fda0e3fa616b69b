"""Invite friends in the member center: the code and link, friends with masked names and their
states, a new code; hidden while referrals are off."""

import pytest

from rewards.referrals.attribution import referral_attribute
from rewards.referrals.models import ReferralCode, ReferralProgram
from rewards.referrals.program import referral_settings_changed
from tests.center.test_check_in import signed_in
from tests.rewards.referral_setup import member, purchase, referral_program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_a_member_sees_their_code_friends_and_gets_a_new_code(django_capture_on_commit_callbacks):
    referral_program(link_template="https://shop.example/join?ref={code}")
    ann = member("ann", display_name="Ann")
    browser = signed_in(ann)
    page = browser.get("/m/invite/").content.decode()
    code = ReferralCode.objects.get(member=ann, is_active=True).code
    assert f'<code id="invite-code">{code}</code>' in page
    assert f"https://shop.example/join?ref={code}" in page
    assert "purchase of 50 or more within 30 days" in page
    assert 'href="/m/invite/"' in page  # in the navigation
    assert "No friends have joined with your code yet." in page

    referral_attribute(invitee=member("bo", display_name="Bob"), code=code)
    referral_attribute(invitee=member("cy", display_name="Cyd"), code=code)
    with django_capture_on_commit_callbacks(execute=True):
        purchase("bo", "55.00")
    page = browser.get("/m/invite/").content.decode()
    assert "<span>1</span> qualified of 2 joined" in page
    assert "B**" in page and "C**" in page and "Bob" not in page and ">bo<" not in page
    assert "qualified: rewarded" in page and "waiting for a first purchase" in page

    done = browser.post("/m/invite/new-code/", follow=True).content.decode()
    new = ReferralCode.objects.get(member=ann, is_active=True).code
    assert new != code and f"Your new code is {new}" in done


def test_hidden_while_referrals_are_off(db):
    referral_program()
    ReferralProgram.objects.filter(pk=1).update(is_active=False)
    referral_settings_changed()
    browser = signed_in(member("ann"))
    assert browser.get("/m/invite/").status_code == 404
    assert 'href="/m/invite/"' not in browser.get("/m/").content.decode()
