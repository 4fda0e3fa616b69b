"""The points mall and the points history in the member center: the member's own price, a
confirmation step, the code handed out; the ledger in the member's words."""

import re

import pytest

from loyalty.models import MemberStanding
from rewards.models import Redemption
from tests.center.test_check_in import signed_in
from tests.factories import MemberFactory, give_points, make_reward

pytestmark = pytest.mark.django_db


def test_a_member_redeems_with_a_confirmation_and_reads_the_code_and_history(db):
    make_reward("cinema", codes=2, kind="coupon", cost_points=300, name="Cinema ticket")
    make_reward("lounge", cost_points=5000, name="Lounge pass")
    give_points("ann", 500)
    ann = MemberFactory._meta.model.objects.get(external_id="ann")
    browser = signed_in(ann)

    mall = browser.get("/m/mall/").content.decode()
    assert 'id="reward-cinema"' in mall and "300 points" in mall
    assert 'data-code="insufficient_points"' in mall  # the lounge pass: not enough points
    confirm = browser.get("/m/mall/cinema/").content.decode()
    assert "You have 500 points; 200 are left after this." in confirm
    key = re.search(r'name="key" value="(\w+)"', confirm)[1]

    done = browser.post("/m/mall/cinema/", {"key": key}, follow=True).content.decode()
    assert "Redeemed! Your code: CINEMA-" in done and "<code>CINEMA-" in done
    browser.post("/m/mall/cinema/", {"key": key})  # the same form again: one redemption
    assert Redemption.objects.filter(member=ann).count() == 1
    assert MemberStanding.objects.get(member=ann).points == 200

    refused = browser.post("/m/mall/lounge/", {"key": "other"}, follow=True).content.decode()
    assert "not have enough spendable points" in refused
    assert browser.get("/m/mall/nothing/").status_code == 404

    history = browser.get("/m/history/").content.decode()
    assert "Spent on a reward" in history and '"mc-amount mc-minus">-300<' in history
    spent = browser.get("/m/history/", {"show": "spent"}).content.decode()
    assert 'data-kind="spend"' in spent and 'data-kind="adjust"' not in spent
    earned = browser.get("/m/history/", {"show": "earned"}).content.decode()
    assert 'data-kind="adjust"' in earned and 'data-kind="spend"' not in earned
