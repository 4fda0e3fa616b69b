"""Streaks across local day boundaries with freezes; quests across period roll-overs."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Member
from loyalty.engine.tier_review import tier_lock
from loyalty.models import EntryKind, LedgerEntry, MemberStreak, QuestProgress, Tier
from loyalty.selectors import member_quests
from tests.factories import ActionFactory, make_badge, make_quest, make_streak, make_tiers
from tests.loyalty.conftest import local

pytestmark = pytest.mark.django_db
SH = "Asia/Shanghai"


def state() -> MemberStreak:
    return MemberStreak.objects.get()


def test_consecutive_local_days_extend_a_streak(earn, settings):
    settings.TIME_ZONE = SH
    make_streak()
    # 23:30 on 1 March and 00:30 on 2 March local: two days, though one UTC day.
    earn(action="check_in", at=local(2026, 3, 1, 23, 30, tz=SH))
    earn(action="check_in", at=local(2026, 3, 2, 0, 30, tz=SH))
    assert (state().current, state().longest) == (2, 2)


def test_two_check_ins_on_one_local_day_count_once(earn, settings):
    settings.TIME_ZONE = SH
    make_streak()
    # 16:30 UTC on 1 March and 15:30 UTC on 2 March are both 2 March in Shanghai.
    earn(action="check_in", at=local(2026, 3, 1, 16, 30))
    earn(action="check_in", at=local(2026, 3, 2, 15, 30))
    assert state().current == 1


def test_a_missed_day_restarts_the_streak_and_keeps_the_longest(earn):
    make_streak()
    for day in (1, 2, 3, 5):
        earn(action="check_in", at=local(2026, 3, day, 12))
    assert (state().current, state().longest) == (1, 3)


def test_a_tier_privilege_freezes_a_missed_day(earn):
    make_streak()
    make_tiers(("member", 0, {"streak_freezes": {"count": 1}}))
    for day in (1, 2, 4):
        earn(action="check_in", at=local(2026, 3, day, 12))
    assert state().current == 3
    assert state().freezes_used == 1
    earn(action="check_in", at=local(2026, 3, 6, 12))  # the month's freeze is used up
    assert state().current == 1


def test_freezes_renew_each_month(earn):
    make_streak()
    make_tiers(("member", 0, {"streak_freezes": {"count": 1}}))
    earn(action="check_in", at=local(2026, 3, 29, 12))
    earn(action="check_in", at=local(2026, 3, 31, 12))  # March's freeze
    earn(action="check_in", at=local(2026, 4, 2, 12))  # April's freeze
    assert state().current == 3


def test_without_freezes_a_gap_breaks_the_streak(earn):
    make_streak()
    tiers = make_tiers(("member", 0), ("gold", 1000, {"streak_freezes": {"count": 2}}))
    earn(action="check_in", at=local(2026, 3, 1, 12))
    earn(action="check_in", at=local(2026, 3, 3, 12))
    assert state().current == 1
    tier_lock(member=Member.objects.get(), tier=Tier.objects.get(code="gold"))
    earn(action="check_in", at=local(2026, 3, 5, 12))
    assert state().current == 2
    del tiers


def test_an_onboarding_quest_completes_once_with_its_rewards(earn):
    badge = make_badge("onboarded", "manual")
    make_quest(
        "onboarding",
        "onboarding",
        [("upload_avatar", 1), ("browse_item", 3)],
        reward_points=200,
        reward_badge=badge,
    )
    earn(action="upload_avatar")
    for _ in range(2):
        assert earn(action="browse_item")["quests_completed"] == []
    done = earn(action="browse_item")
    assert done["quests_completed"] == ["onboarding"]
    assert done["badges_awarded"] == [{"badge": "onboarded", "level": "", "sequence": 1}]
    assert earn(action="browse_item")["quests_completed"] == []
    from loyalty.models import MemberStanding

    assert MemberStanding.objects.get().points == 200


def test_a_daily_quest_rolls_over_at_local_midnight(earn, settings):
    settings.TIME_ZONE = SH
    make_quest("daily-browse", "daily", [("browse_item", 2)])
    earn(action="browse_item", at=local(2026, 3, 1, 23, 50, tz=SH))
    # Ten minutes later it is a new local day: progress starts again.
    assert earn(action="browse_item", at=local(2026, 3, 2, 0, 0, tz=SH))["quests_completed"] == []
    assert earn(action="browse_item", at=local(2026, 3, 2, 8, 0, tz=SH))["quests_completed"] == [
        "daily-browse"
    ]
    assert QuestProgress.objects.count() == 2


def test_a_weekly_quest_rolls_over_on_monday(earn):
    make_quest("weekly-review", "weekly", [("review", 2)])
    earn(action="review", at=local(2026, 3, 8, 12))  # Sunday
    assert earn(action="review", at=local(2026, 3, 9, 12))["quests_completed"] == []  # Monday
    assert earn(action="review", at=local(2026, 3, 10, 12))["quests_completed"] == ["weekly-review"]


def test_quest_progress_is_visible(earn):
    make_quest("onboarding", "onboarding", [("upload_avatar", 1), ("browse_item", 3)])
    earn(action="browse_item")
    (quest,) = member_quests(Member.objects.get())
    assert quest["completed"] is False
    assert [(s["action"], s["done"], s["count"]) for s in quest["steps"]] == [
        ("upload_avatar", 0, 1),
        ("browse_item", 1, 3),
    ]


def test_a_late_events_bonuses_count_when_it_occurred(earn):
    make_quest("first-review", "onboarding", [("review", 1)], reward_points=30, reward_growth=3)
    make_badge(
        "reviewer", "action_count", action=ActionFactory(code="review"), threshold=1, bonus_points=5
    )
    occurred = timezone.now() - timedelta(days=40)

    earn(action="review", at=occurred)

    bonuses = LedgerEntry.objects.filter(kind=EntryKind.BONUS)
    assert bonuses.count() == 3  # quest points and growth, badge points
    assert set(bonuses.values_list("effective_at", flat=True)) == {occurred}
