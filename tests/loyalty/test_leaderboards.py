"""Leaderboards: ties, opt-out and exclusions, neighbours at the edges, period roll-over,
and a rebuild that reproduces the incremental scores exactly."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.models import Member
from loyalty.engine.events import EventInput, record_event
from loyalty.engine.reversals import event_reverse
from loyalty.gamification.leaderboards import (
    leaderboard_view,
    leaderboards_rebuild,
    resolve_period,
)
from loyalty.ledger.points import activate_pending_points
from loyalty.models import LeaderboardScore
from loyalty.scores.counting import board_period_start
from tests.factories import make_leaderboard, make_rule

pytestmark = pytest.mark.django_db


def view(board, member=None, at=None, around=2):
    period = board_period_start(board.period, at or timezone.now())
    member_id = Member.objects.get(external_id=member).pk if member else None
    return leaderboard_view(board=board, period=period, member_id=member_id, around=around)


def ids(rows) -> list[tuple[int, str, int]]:
    names = dict(Member.objects.values_list("pk", "external_id"))
    return [(r.rank, names[r.member_id], r.score) for r in rows]


@pytest.fixture
def board(earn):
    make_rule("purchase", unit_attribute="amount", growth_per_unit=1)
    board = make_leaderboard("weekly-growth", "growth", "week")
    for member, amount in (("a", 50), ("b", 30), ("c", 30), ("d", 10), ("e", 5)):
        earn(member, amount=amount)
    return board


def test_ties_share_a_rank(board):
    assert ids(view(board)["top"]) == [
        (1, "a", 50),
        (2, "b", 30),
        (2, "c", 30),
        (4, "d", 10),
        (5, "e", 5),
    ]


def test_a_member_sees_rank_score_percentile_and_neighbours(board):
    me = view(board, "c")["me"]
    assert (me["rank"], me["score"]) == (2, 30)
    assert me["percentile"] == 40.0  # two of five ranked below
    assert ids(me["above"]) == [(1, "a", 50), (2, "b", 30)]
    assert ids(me["below"]) == [(4, "d", 10), (5, "e", 5)]


def test_neighbours_at_the_top_and_bottom_edges(board):
    top = view(board, "a")["me"]
    assert top["above"] == [] and ids(top["below"]) == [(2, "b", 30), (2, "c", 30)]
    bottom = view(board, "e")["me"]
    assert bottom["below"] == [] and ids(bottom["above"]) == [(2, "c", 30), (4, "d", 10)]


def test_opted_out_and_excluded_members_never_appear(board):
    Member.objects.filter(external_id="a").update(leaderboard_opt_out=True)
    board.excluded_members.add(Member.objects.get(external_id="d"))
    shown = view(board, "c")
    assert ids(shown["top"]) == [(1, "b", 30), (1, "c", 30), (3, "e", 5)]
    assert shown["ranked"] == 3
    assert view(board, "a")["me"] is None


def test_a_weekly_board_rolls_over_and_last_week_stays_readable(earn):
    make_rule("purchase", unit_attribute="amount", growth_per_unit=1)
    board = make_leaderboard("weekly", "growth", "week")
    this_monday = board_period_start("week", timezone.now())
    last_week = timezone.now() - timedelta(days=7)
    earn("old-winner", amount=100, at=last_week)
    earn("new-leader", amount=10)
    assert ids(view(board)["top"]) == [(1, "new-leader", 10)]
    previous = resolve_period(board, "previous", now=timezone.now())
    assert previous == this_monday - timedelta(days=7)
    past = leaderboard_view(board=board, period=previous)
    assert ids(past["top"]) == [(1, "old-winner", 100)]


def test_an_action_count_board_counts_events_and_forgets_full_reversals(earn):
    make_rule("review", points_per_occurrence=1)
    board = make_leaderboard("reviews", "action_count", "month", action="review")
    earn("a", action="review")
    event_id = record_event(
        client=None, event=EventInput(external_id="a", action="review", idempotency_key="x")
    ).event_id
    assert ids(view(board)["top"]) == [(1, "a", 2)]
    event_reverse(client=None, event_id=event_id, idempotency_key="r")
    assert ids(view(board)["top"]) == [(1, "a", 1)]


def test_a_rebuild_reproduces_the_incremental_scores_exactly(earn):
    make_rule("purchase", unit_attribute="amount", growth_per_unit="0.5", points_per_unit=1)
    make_rule("review", points_per_occurrence=20, hold_days=3)
    boards = [
        make_leaderboard("g-week", "growth", "week"),
        make_leaderboard("p-month", "points", "month"),
        make_leaderboard("p-day", "points", "day"),
        make_leaderboard("all-reviews", "action_count", "all_time", action="review"),
        make_leaderboard("g-all", "growth", "all_time"),
    ]
    now = timezone.now()
    for day in range(40):
        for member in ("a", "b", "c"):
            if (day + len(member)) % 3 == 0:
                earn(member, amount=10 + day, at=now - timedelta(days=day, hours=1))
            if day % 4 == 0:
                earn(member, action="review", at=now - timedelta(days=day, hours=2))
    event_ids = list(
        record_event(
            client=None,
            event=EventInput(
                external_id="a",
                action="purchase",
                idempotency_key=f"p{i}",
                attributes={"amount": 40},
                occurred_at=now - timedelta(days=i),
            ),
        ).event_id
        for i in range(3)
    )
    event_reverse(client=None, event_id=event_ids[0], idempotency_key="r0")
    event_reverse(client=None, event_id=event_ids[1], idempotency_key="r1", amount=Decimal("15"))
    activate_pending_points(at=now)
    incremental = sorted(
        LeaderboardScore.objects.exclude(score=0).values_list(
            "leaderboard__code", "period_start", "member_id", "score"
        )
    )
    zeros = set(
        LeaderboardScore.objects.filter(score=0).values_list(
            "leaderboard__code", "period_start", "member_id"
        )
    )
    assert incremental
    leaderboards_rebuild(boards=boards)
    rebuilt = sorted(
        LeaderboardScore.objects.values_list(
            "leaderboard__code", "period_start", "member_id", "score"
        )
    )
    assert rebuilt == incremental
    assert not zeros & {row[:3] for row in rebuilt}


def test_a_reversal_takes_back_in_the_events_own_period_on_every_metric(earn):
    make_rule("purchase", points_per_occurrence=100, growth_per_occurrence=10)
    boards = [
        make_leaderboard("points-month", "points", "month"),
        make_leaderboard("growth-month", "growth", "month"),
        make_leaderboard("orders-month", "action_count", "month", action="purchase"),
    ]
    last_month = timezone.now() - timedelta(days=40)
    event = record_event(
        client=None,
        event=EventInput(
            external_id="m1", action="purchase", idempotency_key="o-1", occurred_at=last_month
        ),
    )
    assert [view(b, at=last_month)["ranked"] for b in boards] == [1, 1, 1]

    event_reverse(client=None, event_id=event.event_id, idempotency_key="refund-1")

    # Gone from the month the order was made in, and nothing negative in this month.
    assert [view(b, at=last_month)["ranked"] for b in boards] == [0, 0, 0]
    assert not LeaderboardScore.objects.exclude(score=0).exists()
