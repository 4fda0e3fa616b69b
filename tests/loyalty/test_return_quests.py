"""After a return: a quest that opens when a churned member comes back, for its window, so a
returning member is guided rather than just credited."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Member
from loyalty.engine.events import EventInput, record_event
from loyalty.models import MemberActivity, QuestProgress
from loyalty.selectors import member_quests
from tests.factories import MemberFactory, make_key_action, make_quest

pytestmark = pytest.mark.django_db

_keys = iter(range(10**6))


def act(member: str, action: str, at):
    return record_event(
        client=None,
        event=EventInput(
            external_id=member, action=action, idempotency_key=f"r-{next(_keys)}", occurred_at=at
        ),
    ).outcome


@pytest.fixture
def program(db):
    now = timezone.now()
    make_key_action("check_in", effective_from=now - timedelta(days=400))
    make_quest(
        "welcome-back",
        "return",
        [("check_in", 2), ("purchase", 1)],
        reward_points=300,
        window_days=7,
    )
    for external_id in ("back", "never-left"):
        member = MemberFactory(external_id=external_id, joined_at=now - timedelta(days=200))
        MemberActivity.objects.create(
            member=member,
            state="churned" if external_id == "back" else "active",
            since=now - timedelta(days=60),
            last_key_day=(now - timedelta(days=60 if external_id == "back" else 1)).date(),
        )
    return now


def test_a_returning_member_is_guided_by_the_quest_and_rewarded(program):
    now = program
    first = act("back", "check_in", now - timedelta(days=3))
    assert first["activity"] == "returned"
    assert [q["code"] for q in member_quests(Member.objects.get(external_id="back"))] == [
        "welcome-back"
    ]
    act("back", "check_in", now - timedelta(days=2))
    done = act("back", "purchase", now - timedelta(days=1))
    assert done["quests_completed"] == ["welcome-back"]
    assert done["points"] == 300  # the quest's bonus: no rule credits purchases here
    progress = QuestProgress.objects.get(member__external_id="back")
    assert progress.period_start == (now - timedelta(days=3)).date()


def test_the_quest_is_closed_to_others_and_after_its_window(program):
    now = program
    assert act("never-left", "check_in", now - timedelta(days=1))["quests_completed"] == []
    assert member_quests(Member.objects.get(external_id="never-left")) == []
    assert not QuestProgress.objects.filter(member__external_id="never-left").exists()
    act("back", "check_in", now - timedelta(days=20))  # returns 20 days ago: window of 7 is over
    act("back", "check_in", now - timedelta(days=2))
    assert not QuestProgress.objects.filter(
        member__external_id="back", period_start=(now - timedelta(days=2)).date()
    ).exists()
    assert member_quests(Member.objects.get(external_id="back")) == []
