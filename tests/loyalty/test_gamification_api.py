"""Badges, quests, streaks and leaderboards over real HTTP, for host apps and members."""

import pytest

from accounts.models import Member
from tests.factories import (
    ActionFactory,
    make_badge,
    make_leaderboard,
    make_quest,
    make_rule,
    make_streak,
)
from tests.helpers import assert_error


@pytest.fixture
def played(api):
    make_rule("review", growth_per_occurrence=5)
    make_streak("check-ins", "check_in")
    make_badge("first-review", "action_count", action=ActionFactory(code="review"), threshold=1)
    make_badge(
        "secret-fan", "action_count", action=ActionFactory(code="review"), threshold=5, secret=True
    )
    make_quest("weekly-reviewer", "weekly", [("review", 2)], reward_points=50)
    make_leaderboard("weekly-growth", "growth", "week")
    for member, reviews in (("alice", 2), ("bob", 1)):
        api.put(f"/api/v1/members/{member}", json={"display_name": member.title()})
        for i in range(reviews):
            api.post(
                "/api/v1/events",
                json={
                    "external_id": member,
                    "action": "review",
                    "idempotency_key": f"{member}-{i}",
                },
            )
    api.post(
        "/api/v1/events",
        json={"external_id": "alice", "action": "check_in", "idempotency_key": "ci"},
    )


def test_badges_show_earned_and_progress_but_not_secrets(api, played):
    body = api.get("/api/v1/members/bob/badges").json()
    assert [b["code"] for b in body["earned"]] == ["first-review"]
    assert body["in_progress"] == []  # the only badge left is secret


def test_quests_and_streaks(api, played):
    (quest,) = api.get("/api/v1/members/alice/quests").json()
    assert quest["completed"] is True
    (streak,) = api.get("/api/v1/members/alice/streaks").json()
    assert (streak["current"], streak["done_today"]) == (1, True)


def test_the_host_app_reads_a_leaderboard_around_a_member(api, played):
    assert [b["code"] for b in api.get("/api/v1/leaderboards").json()] == ["weekly-growth"]
    board = api.get("/api/v1/leaderboards/weekly-growth", params={"around": "bob"}).json()
    assert [(r["rank"], r["external_id"], r["score"]) for r in board["top"]] == [
        (1, "alice", 10),
        (2, "bob", 5),
    ]
    assert board["me"]["rank"] == 2
    assert board["me"]["above"][0]["external_id"] == "alice"
    assert board["ranked"] == 2


def test_a_member_sees_names_not_ids_and_their_own_place(api, played, member_token):
    token = member_token(Member.objects.get(external_id="bob"))
    board = (
        api.as_key(token)
        .get("/api/v1/leaderboards/weekly-growth", params={"around": "alice"})
        .json()
    )
    assert board["me"]["rank"] == 2  # "around" is ignored: members see themselves
    assert all("external_id" not in row for row in board["top"])
    assert [row["display_name"] for row in board["top"]] == ["Alice", "Bob"]
    assert [b["code"] for b in api.as_key(token).get("/api/v1/me/badges").json()["earned"]] == [
        "first-review"
    ]


def test_leaderboard_errors(api, played):
    assert_error(api.get("/api/v1/leaderboards/nope"), 404, "not_found")
    assert_error(
        api.get("/api/v1/leaderboards/weekly-growth", params={"period": "yesterday"}),
        400,
        "invalid_period",
    )
    assert_error(
        api.get("/api/v1/leaderboards/weekly-growth", params={"around": "ghost"}),
        404,
        "member_not_found",
    )
    past = api.get("/api/v1/leaderboards/weekly-growth", params={"period": "previous"}).json()
    assert past["top"] == []


@pytest.mark.parametrize("board", ["weekly-growth", "all-time-growth"])
@pytest.mark.parametrize(
    "period", ["9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01", "2026-13-01", "x"]
)
def test_a_period_outside_the_accepted_dates_is_refused_on_every_board(api, played, board, period):
    make_leaderboard("all-time-growth", "growth", "all_time")

    response = api.get(f"/api/v1/leaderboards/{board}", params={"period": period})

    assert_error(response, 400, "invalid_period")


def test_the_accepted_period_dates_are_answered(api, played):
    for period in ("2000-01-01", "2099-12-31"):
        response = api.get("/api/v1/leaderboards/weekly-growth", params={"period": period})
        assert response.status_code == 200, response.text
        assert response.json()["top"] == []


def test_event_answers_name_badges_quests_and_streaks(api):
    make_badge("first-review", "action_count", action=ActionFactory(code="review"), threshold=1)
    make_quest("one-review", "daily", [("review", 1)])
    make_streak("reviews", "review")
    body = api.post(
        "/api/v1/events", json={"external_id": "m", "action": "review", "idempotency_key": "k"}
    ).json()
    assert body["badges_awarded"] == [{"badge": "first-review", "level": "", "sequence": 1}]
    assert body["quests_completed"] == ["one-review"]
    assert body["streaks"] == [{"streak": "reviews", "current": 1, "longest": 1}]
