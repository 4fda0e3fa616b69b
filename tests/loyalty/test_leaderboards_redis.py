"""The Redis leaderboard store: the same answers as the database store, writes mirrored on
commit only, and the database as the fallback and the source to refill from."""

import random
import uuid

import pytest
import redis
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Member
from loyalty.engine.events import EventInput, record_event, record_events
from loyalty.engine.reversals import event_reverse
from loyalty.gamification import leaderboards
from loyalty.gamification.leaderboards import leaderboard_view, leaderboards_rebuild
from loyalty.models import LeaderboardScore
from loyalty.periods import LIFETIME_START
from loyalty.scores import counting
from loyalty.scores.counting import board_period_start
from loyalty.scores.db_store import DatabaseLeaderboardStore
from loyalty.scores.redis_store import RedisLeaderboardStore
from tests.factories import make_leaderboard, make_rule

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture
def redis_store(monkeypatch):
    try:
        redis.Redis.from_url(REDIS_URL).ping()
    except redis.RedisError:
        pytest.skip("needs Redis on 127.0.0.1:6379")
    store = RedisLeaderboardStore(REDIS_URL, prefix=f"test-lb-{uuid.uuid4().hex}")
    monkeypatch.setattr(counting, "override", store)
    yield store
    if keys := list(store.redis.scan_iter(f"{store.prefix}:*")):
        store.redis.delete(*keys)


def answers(store, board, period=LIFETIME_START) -> dict:
    """Everything a store can be asked about the board, for every member."""
    out = {
        "count": store.count(board=board, period=period),
        "top": store.top(board=board, period=period, limit=10),
    }
    for member_id, score in LeaderboardScore.objects.filter(
        leaderboard=board, period_start=period
    ).values_list("member_id", "score"):
        out[member_id] = (
            store.rank(board=board, period=period, member_id=member_id),
            store.around(board=board, period=period, member_id=member_id, size=2),
            store.below(board=board, period=period, score=score),
        )
    return out


def filled(store, board, period=LIFETIME_START) -> bool:
    return store.redis.get(f"{store._key(board.pk, period)}:state") == b"ready"


@pytest.mark.django_db
def test_the_redis_store_answers_exactly_as_the_database_store(redis_store):
    board = make_leaderboard("all-growth", "growth", "all_time")
    rng = random.Random(11)
    members = [Member.objects.create(external_id=f"m{i}") for i in range(60)]
    LeaderboardScore.objects.bulk_create(
        LeaderboardScore(
            leaderboard=board,
            period_start=LIFETIME_START,
            member=member,
            score=rng.choice([0, 5, 10, 10, 10, 25, 40, 40, 100, rng.randint(-5, 500)]),
        )
        for member in members
    )
    # Hidden members, both kinds, one of them at the top.
    top_member = LeaderboardScore.objects.order_by("-score").first().member
    Member.objects.filter(pk=top_member.pk).update(leaderboard_opt_out=True)
    board.excluded_members.add(members[7], members[8])

    expected = answers(DatabaseLeaderboardStore(), board)
    assert answers(redis_store, board) == expected
    assert filled(redis_store, board)
    assert expected["count"] == LeaderboardScore.objects.filter(score__gt=0).count() - len(
        {top_member.pk, members[7].pk, members[8].pk}
        & set(LeaderboardScore.objects.filter(score__gt=0).values_list("member_id", flat=True))
    )


@pytest.mark.django_db
def test_a_view_looks_at_the_set_once_for_all_its_reads(redis_store, monkeypatch):
    board = make_leaderboard("all-growth", "growth", "all_time")
    members = [Member.objects.create(external_id=f"m{i}") for i in range(12)]
    LeaderboardScore.objects.bulk_create(
        LeaderboardScore(leaderboard=board, period_start=LIFETIME_START, member=m, score=10 * i)
        for i, m in enumerate(members, start=1)
    )
    Member.objects.filter(pk=members[-1].pk).update(leaderboard_opt_out=True)
    board.excluded_members.add(members[5])
    me = members[6].pk
    monkeypatch.setattr(counting, "override", DatabaseLeaderboardStore())
    expected = leaderboard_view(board=board, period=LIFETIME_START, member_id=me)
    monkeypatch.setattr(counting, "override", redis_store)
    leaderboard_view(board=board, period=LIFETIME_START, member_id=me)  # fills the set
    states = []
    get = redis_store.redis.get
    monkeypatch.setattr(redis_store.redis, "get", lambda key: states.append(key) or get(key))
    with CaptureQueriesContext(connection) as queries:
        answer = leaderboard_view(board=board, period=LIFETIME_START, member_id=me)
    assert answer == expected
    assert answer["me"]["rank"] == 5  # behind 110, 100, 90, 80: 120 and 60 are hidden
    hidden_reads = [q for q in queries.captured_queries if "leaderboard_opt_out" in q["sql"]]
    assert len(hidden_reads) == 1
    assert len(states) == 1
    # Outside a view each read looks for itself.
    redis_store.top(board=board, period=LIFETIME_START, limit=3)
    redis_store.count(board=board, period=LIFETIME_START)
    assert len(states) == 3


def view(board, member=None) -> dict:
    period = board_period_start(board.period, timezone.now())
    member_id = Member.objects.get(external_id=member).pk if member else None
    return leaderboard_view(board=board, period=period, member_id=member_id)


def event(member: str, key: str, amount: int) -> int:
    return record_event(
        client=None,
        event=EventInput(
            external_id=member,
            action="purchase",
            idempotency_key=key,
            attributes={"amount": amount},
        ),
    ).event_id


@pytest.mark.django_db(transaction=True)
def test_writes_reach_redis_when_they_commit_and_never_when_they_roll_back(
    redis_store, monkeypatch
):
    make_rule("purchase", unit_attribute="amount", growth_per_unit=1)
    board = make_leaderboard("weekly-growth", "growth", "week")
    event("a", "a1", 50)
    b_event = event("b", "b1", 30)
    assert [r.score for r in view(board)["top"]] == [50, 30]  # fills the set
    period = board_period_start(board.period, timezone.now())
    assert filled(redis_store, board, period)

    event("c", "c1", 70)
    event("a", "a2", 5)
    event_reverse(client=None, event_id=b_event, idempotency_key="rb")  # b falls to zero
    with pytest.raises(RuntimeError), transaction.atomic():
        event("d", "d1", 999)
        raise RuntimeError("rolled back")

    shown = view(board, "a")
    names = dict(Member.objects.values_list("pk", "external_id"))
    assert [(r.rank, names[r.member_id], r.score) for r in shown["top"]] == [
        (1, "c", 70),
        (2, "a", 55),
    ]
    assert redis_store.redis.zcard(redis_store._key(board.pk, period)) == 2
    monkeypatch.setattr(counting, "override", DatabaseLeaderboardStore())
    assert view(board, "a") == shown


@pytest.mark.django_db(transaction=True)
def test_a_batch_mirrors_every_changed_score_of_a_set_at_once(redis_store):
    make_rule("purchase", unit_attribute="amount", growth_per_unit=1)
    board = make_leaderboard("weekly-growth", "growth", "week")
    period = board_period_start(board.period, timezone.now())
    event("m0", "first", 1)
    view(board)  # fills the set
    record_events(
        client=None,
        events=[
            EventInput(
                external_id=f"m{i % 7}",
                action="purchase",
                idempotency_key=f"batch-{i}",
                attributes={"amount": 10 + i},
            )
            for i in range(30)
        ],
    )
    in_redis = {
        int(name): -int(score)
        for name, score in redis_store.redis.zrange(
            redis_store._key(board.pk, period), 0, -1, withscores=True
        )
    }
    stored = dict(
        LeaderboardScore.objects.filter(leaderboard=board, period_start=period).values_list(
            "member_id", "score"
        )
    )
    assert len(stored) == 7
    assert in_redis == stored


@pytest.mark.django_db(transaction=True)
def test_an_emptied_redis_refills_and_a_rebuild_drops_the_sets(redis_store):
    make_rule("purchase", unit_attribute="amount", growth_per_unit=1)
    board = make_leaderboard("all-growth", "growth", "all_time")
    for i, amount in enumerate((10, 40, 40, 5)):
        event(f"m{i}", f"k{i}", amount)
    first = view(board, "m2")
    assert filled(redis_store, board)

    redis_store.redis.delete(*redis_store.redis.scan_iter(f"{redis_store.prefix}:*"))
    assert view(board, "m2") == first
    assert filled(redis_store, board)

    leaderboards_rebuild(boards=[board])
    assert not filled(redis_store, board)
    assert view(board, "m2") == first


@pytest.mark.django_db(transaction=True)
def test_with_redis_unreachable_events_still_count_and_reads_come_from_the_database(
    monkeypatch,
):
    store = RedisLeaderboardStore("redis://127.0.0.1:1/0", prefix="unreachable")
    monkeypatch.setattr(counting, "override", store)
    make_rule("purchase", unit_attribute="amount", growth_per_unit=1)
    board = make_leaderboard("all-growth", "growth", "all_time")
    event("a", "a1", 20)
    event("b", "b1", 30)
    shown = view(board, "a")
    assert (shown["me"]["rank"], shown["me"]["score"], shown["ranked"]) == (2, 20, 2)
    monkeypatch.setattr(counting, "override", DatabaseLeaderboardStore())
    assert view(board, "a") == shown


@pytest.mark.django_db(transaction=True)
def test_the_nightly_refresh_heals_a_score_whose_mirror_write_was_lost(redis_store):
    from loyalty.tasks import refresh_leaderboards_task

    make_rule("purchase", unit_attribute="amount", growth_per_unit=1)
    board = make_leaderboard("all-growth", "growth", "all_time")
    for i, amount in enumerate((10, 40, 30)):
        event(f"m{i}", f"k{i}", amount)
    assert view(board, "m0")["me"]["rank"] == 3
    assert filled(redis_store, board)
    # m0's new score reaches the database, and its mirror write is lost (a crash after commit).
    member = Member.objects.get(external_id="m0")
    LeaderboardScore.objects.filter(leaderboard=board, member=member).update(score=100)
    assert view(board, "m0")["me"]["rank"] == 3  # Redis still holds the old score

    assert refresh_leaderboards_task.delay().get() == 1

    assert not filled(redis_store, board)
    assert view(board, "m0")["me"]["rank"] == 1
    assert answers(redis_store, board) == answers(DatabaseLeaderboardStore(), board)


@pytest.mark.django_db(transaction=True)
def test_the_refresh_leaves_a_set_being_filled_alone(redis_store):
    make_rule("purchase", unit_attribute="amount", growth_per_unit=1)
    board = make_leaderboard("all-growth", "growth", "all_time")
    event("m0", "k0", 10)
    view(board, "m0")
    key = redis_store._key(board.pk, LIFETIME_START)
    redis_store.redis.set(f"{key}:state", "filling")  # as a fill in progress leaves it

    leaderboards.leaderboards_refresh()

    assert redis_store.redis.get(f"{key}:state") == b"filling"
    assert redis_store.redis.zcard(key) == 1


@pytest.mark.django_db
def test_a_redis_that_stops_answering_costs_a_view_one_timeout_then_is_left_alone(monkeypatch):
    from tests.test_neighbours import silent_server

    with silent_server() as (port, accepted):
        store = RedisLeaderboardStore(
            f"redis://127.0.0.1:{port}/0", prefix="silent", timeout=0.2, pause=60
        )
        monkeypatch.setattr(counting, "override", store)
        make_rule("purchase", unit_attribute="amount", growth_per_unit=1)
        board = make_leaderboard("all-growth", "growth", "all_time")
        event("a", "a1", 20)
        event("b", "b1", 30)

        shown = view(board, "a")
        again = view(board, "a")

        # The first command timed out; every read since went to the database.
        assert len(accepted) == 1
        assert not store.available
    assert (shown["me"]["rank"], shown["ranked"]) == (2, 2)
    assert again == shown


@pytest.mark.django_db(transaction=True)
def test_a_set_that_missed_writes_while_redis_failed_heals_within_a_minute(
    redis_store, monkeypatch
):
    from loyalty.models import StaleLeaderboardSet
    from loyalty.tasks import heal_leaderboards_task

    make_rule("purchase", unit_attribute="amount", growth_per_unit=1)
    board = make_leaderboard("all-growth", "growth", "all_time")
    for i, amount in enumerate((10, 40, 30)):
        event(f"m{i}", f"k{i}", amount)
    assert view(board, "m0")["me"]["rank"] == 3
    assert filled(redis_store, board)
    # Redis fails for this process: m0's new score reaches the database, not the set.
    monkeypatch.setattr(redis_store, "_avoid_until", float("inf"))
    event("m0", "k3", 100)
    assert StaleLeaderboardSet.objects.filter(leaderboard=board).exists()
    # Redis is back: the set still holds the old score until the heal job runs.
    monkeypatch.setattr(redis_store, "_avoid_until", 0.0)
    assert view(board, "m0")["me"]["rank"] == 3

    assert heal_leaderboards_task.delay().get() == 1

    assert not StaleLeaderboardSet.objects.exists()
    assert view(board, "m0")["me"]["rank"] == 1
    assert answers(redis_store, board) == answers(DatabaseLeaderboardStore(), board)
