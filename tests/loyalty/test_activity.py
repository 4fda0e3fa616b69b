"""Activity states at their windows' edges in the program's time zone, and gifts granted once."""

from datetime import timedelta

import pytest

from accounts.models import Member
from loyalty.activity.states import grant_birthday_gifts, update_activity_states
from loyalty.models import (
    ActivityTransition,
    Gift,
    GiftGrant,
    MemberActivity,
    MemberStanding,
)
from tests.factories import MemberFactory, make_key_action
from tests.loyalty.conftest import local

pytestmark = pytest.mark.django_db
SH = "Asia/Shanghai"


@pytest.fixture
def key_action(db):
    return make_key_action("check_in", effective_from=local(2020, 1, 1))


def state(member="m1") -> str:
    return MemberActivity.objects.get(member__external_id=member).state


def test_states_move_at_each_windows_edge_in_local_days(earn, key_action, settings):
    settings.TIME_ZONE = SH
    # 23:30 local on 1 March (15:30 UTC): the key day is 1 March in Shanghai.
    earn(action="check_in", at=local(2026, 3, 1, 23, 30, tz=SH))
    assert state() == "active"
    # Five minutes into the local day that many days after the key day.
    expectations = [
        (6, "active"),
        (7, "silent"),
        (13, "silent"),
        (14, "at_risk"),
        (34, "at_risk"),
        (35, "churned"),
    ]
    for days, expected in expectations:
        update_activity_states(at=local(2026, 3, 1, 0, 5, tz=SH) + timedelta(days=days))
        assert state() == expected, (days, expected)
    assert list(ActivityTransition.objects.order_by("id").values_list("to_state", flat=True)) == [
        "active",
        "silent",
        "at_risk",
        "churned",
    ]


def test_the_key_action_needs_its_daily_minimum(earn, db):
    make_key_action("browse_item", min_per_day=3, effective_from=local(2020, 1, 1))
    for minute in range(2):
        earn(action="browse_item", at=local(2026, 3, 1, 10, minute))
    assert state() == "new"
    earn(action="browse_item", at=local(2026, 3, 1, 10, 5))
    assert state() == "active"


def test_a_churned_member_returns_with_one_return_gift(earn, key_action):
    Gift.objects.create(kind="return", points=500)
    earn(action="check_in", at=local(2026, 1, 1, 12))
    update_activity_states(at=local(2026, 3, 1, 12))
    assert state() == "churned"
    outcome = earn(action="check_in", at=local(2026, 3, 2, 12))
    assert outcome["activity"] == "returned"
    earn(action="check_in", at=local(2026, 3, 2, 18))  # the same day again
    assert GiftGrant.objects.filter(kind="return").count() == 1
    assert MemberStanding.objects.get().points == 500
    earn(action="check_in", at=local(2026, 3, 3, 12))
    assert state() == "active"


def test_a_changed_key_action_applies_from_its_date(earn, key_action):
    make_key_action("purchase", effective_from=local(2026, 6, 1))
    earn(action="check_in", at=local(2026, 5, 31, 12))
    assert state() == "active"
    update_activity_states(at=local(2026, 6, 9, 12))
    earn(action="check_in", at=local(2026, 6, 10, 12))  # no longer the key action
    assert state() == "silent"
    earn(action="purchase", at=local(2026, 6, 10, 13))
    assert state() == "active"


def test_members_who_never_act_drift_from_their_join_day(key_action):
    member = MemberFactory(external_id="lurker", joined_at=local(2026, 3, 1, 12))
    MemberStanding.objects.create(member=member)
    update_activity_states(at=local(2026, 3, 5, 12))
    assert state("lurker") == "new"
    update_activity_states(at=local(2026, 3, 9, 12))
    assert state("lurker") == "silent"


def test_the_welcome_gift_comes_once_with_the_first_event(earn):
    Gift.objects.create(kind="welcome", points=100, growth=10)
    assert earn()["gifts"] == [{"kind": "welcome", "points": 100, "growth": 10}]
    assert earn()["gifts"] == []
    assert GiftGrant.objects.count() == 1


def test_birthday_gifts_once_a_year_and_on_the_28th_for_leap_day_birthdays(db):
    Gift.objects.create(kind="birthday", points=50)
    MemberFactory(external_id="leap", birthday="2000-02-29")
    MemberFactory(external_id="march", birthday="1990-03-01")
    assert grant_birthday_gifts(at=local(2027, 2, 28, 12)) == 1
    assert grant_birthday_gifts(at=local(2027, 2, 28, 18)) == 0
    assert grant_birthday_gifts(at=local(2027, 3, 1, 12)) == 1
    assert grant_birthday_gifts(at=local(2028, 2, 28, 12)) == 0  # 2028 has a 29th
    assert grant_birthday_gifts(at=local(2028, 2, 29, 12)) == 1
    assert sorted(GiftGrant.objects.values_list("member__external_id", "occasion")) == [
        ("leap", "birthday:2027"),
        ("leap", "birthday:2028"),
        ("march", "birthday:2027"),
    ]
    assert Member.objects.get(external_id="leap").standing.points == 100


def test_the_summary_shows_the_activity_state(api, key_action):
    api.post(
        "/api/v1/events", json={"external_id": "m1", "action": "check_in", "idempotency_key": "k"}
    )
    assert api.get("/api/v1/members/m1").json()["activity"]["state"] == "active"


def test_emails_for_expiring_points_and_members_at_risk(
    earn, key_action, settings, mailoutbox, django_capture_on_commit_callbacks
):
    from loyalty.activity.states import notify_expiring_points
    from loyalty.models import Program
    from tests.factories import make_rule

    Program.objects.update_or_create(pk=1, defaults={"send_emails": True})
    make_rule("check_in", points_per_occurrence=40, points_expiry="days", points_expiry_n=10)
    MemberFactory(external_id="m1", email="m1@example.com", display_name="Mia")
    with django_capture_on_commit_callbacks(execute=True):
        earn(action="check_in", at=local(2026, 3, 1, 12))
        notify_expiring_points(at=local(2026, 3, 2, 12))
        update_activity_states(at=local(2026, 3, 16, 12))
    subjects = sorted(m.subject for m in mailoutbox)
    assert subjects == [
        "40 of your Loyalty program points expire soon",
        "We miss you at Loyalty program",
    ]
    assert all(m.to == ["m1@example.com"] for m in mailoutbox)
    assert "Hello Mia" in mailoutbox[0].body
