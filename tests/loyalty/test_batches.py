"""A batch is recorded through a unit of work (rows read once, written in bulk), in
transactions of whole members' events. It must end exactly where recording the same events one
at a time ends."""

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Member
from core.idempotency import IdempotencyConflict
from loyalty.demo import load_demo_program
from loyalty.engine.events import EventInput, record_event, record_events
from loyalty.ledger.reconciliation import verify_ledger
from loyalty.models import (
    ActionTally,
    BadgeAward,
    Gift,
    KeyAction,
    LeaderboardScore,
    LedgerEntry,
    MemberActivity,
    MemberStanding,
    MemberStreak,
    PointLot,
    QuestProgress,
    RuleCounter,
    TierChange,
)
from loyalty.program.compiled import program_changed
from tests.helpers import assert_balances_match_ledger

ACTIONS = ["purchase", "check_in", "browse_item", "review", "share", "upload_avatar"]


def _stream(prefix: str, *, start, seed: int, members: int, events: int) -> list[EventInput]:
    """A reproducible mix of actions over three weeks, several events per member and day, so
    caps, cooldowns, streaks, quests, badges and tier upgrades all happen inside one batch."""
    rng = random.Random(seed)
    stream = []
    for index in range(events):
        action = rng.choice(ACTIONS)
        attributes = {
            "purchase": {"amount": f"{rng.randint(100, 90000) / 100:.2f}"},
            "review": {"rating": rng.randint(0, 5), "has_photo": rng.random() < 0.5},
        }.get(action, {})
        stream.append(
            EventInput(
                external_id=f"{prefix}{rng.randrange(members)}",
                action=action,
                idempotency_key=f"{prefix}key-{index}",
                occurred_at=start + timedelta(minutes=index * 37 + rng.randint(0, 30)),
                attributes=attributes,
            )
        )
    return stream


def _state(prefix: str) -> dict:
    """Everything the flow keeps for the members whose id starts with ``prefix``, by their
    external id (primary keys and idempotency keys differ between the two runs)."""
    members = dict(
        Member.objects.filter(external_id__startswith=prefix).values_list("pk", "external_id")
    )

    def by_member(model_or_rows, *fields, order=()):
        rows = {}
        query = getattr(model_or_rows, "objects", model_or_rows)
        for row in (
            query.filter(member_id__in=members).order_by(*order).values("member_id", *fields)
        ):
            rows.setdefault(members[row.pop("member_id")], []).append(row)
        return rows

    standing_fields = [
        "growth",
        "points",
        "points_pending",
        "points_earned",
        "points_spent",
        "points_expired",
        "tier__code",
        "events_count",
        "last_event_at",
    ]
    return {
        "standings": by_member(MemberStanding, *standing_fields),
        # (Bonuses are dated when given, so only event credits keep their date here.)
        "entries": by_member(LedgerEntry, "currency", "kind", "amount", "pending", order=["id"]),
        "earned_at": by_member(
            LedgerEntry.objects.filter(kind="earn"), "effective_at", order=["id"]
        ),
        "lots": by_member(PointLot, "amount", "remaining", "expires_at", order=["id"]),
        "counters": by_member(
            RuleCounter,
            "rule__code",
            "period",
            "period_start",
            "occurrences",
            "growth",
            "points",
            order=["rule__code", "period", "period_start"],
        ),
        "tallies": by_member(ActionTally, "action__code", "count", order=["action__code"]),
        "streaks": by_member(MemberStreak, "streak__code", "current", "longest", "last_day"),
        "quests": by_member(
            QuestProgress,
            "quest__code",
            "period_start",
            "step_counts",
            order=["quest__code", "period_start"],
        ),
        "quests_done": by_member(
            QuestProgress, "quest__code", "period_start", order=["quest__code", "period_start"]
        ),
        "badges": by_member(
            BadgeAward, "badge__code", "sequence", order=["badge__code", "sequence"]
        ),
        "scores": by_member(
            LeaderboardScore,
            "leaderboard__code",
            "period_start",
            "score",
            order=["leaderboard__code", "period_start"],
        ),
        "activity": by_member(MemberActivity, "state", "last_key_day", "key_day", "key_count"),
        "tier_changes": by_member(
            TierChange,
            "from_tier__code",
            "to_tier__code",
            "reason",
            "qualifying_growth",
            order=["id"],
        ),
    }


def _normalised(outcome: dict, prefix: str) -> dict:
    outcome = {k: v for k, v in outcome.items() if k not in ("idempotency_key",)}
    outcome["member"] = outcome["member"].removeprefix(prefix)
    return outcome


@pytest.fixture
def demo_program(db):
    load_demo_program()
    from loyalty.models import Action

    KeyAction.objects.create(
        action=Action.objects.get(code="check_in"),
        effective_from=timezone.now() - timedelta(days=400),
    )
    Gift.objects.create(kind=Gift.Kind.WELCOME, points=25, growth=5, is_active=True)
    program_changed()


def test_a_batch_ends_exactly_where_the_same_events_one_by_one_end(demo_program):
    start = timezone.now() - timedelta(days=21)
    one_by_one = _stream("single-", start=start, seed=5, members=6, events=400)
    batched = _stream("batch-", start=start, seed=5, members=6, events=400)

    singles = [record_event(client=None, event=event).outcome for event in one_by_one]
    results = record_events(client=None, events=batched)

    assert all(result.error is None for result in results)
    # Each item answers what recording it alone answered…
    for single, result in zip(singles, results, strict=True):
        assert _normalised(result.result.outcome, "batch-") == _normalised(single, "single-")
    # …and the rows the flow keeps end the same, member by member.
    single_state, batch_state = _state("single-"), _state("batch-")
    for table, rows in single_state.items():
        assert {k.removeprefix("single-"): v for k, v in rows.items()} == {
            k.removeprefix("batch-"): v for k, v in batch_state[table].items()
        }, table
    # The run made every kind of outcome the flow has, so the comparison covered them.
    made = [result.result.outcome for result in results]
    assert any(o["tier_change"] for o in made)
    assert any(o["badges_awarded"] for o in made)
    assert any(o["quests_completed"] for o in made)
    assert any(o["gifts"] for o in made)
    assert any(c["capped"] for o in made for c in o["credits"]) or any(
        s["reason"] in ("cap_reached", "cooldown") for o in made for s in o["skipped"]
    )
    assert_balances_match_ledger()
    assert verify_ledger().ok


def test_a_key_twice_in_one_batch_is_a_replay_or_a_conflict(demo_program):
    first = EventInput(external_id="m1", action="check_in", idempotency_key="same")
    again = EventInput(external_id="m1", action="check_in", idempotency_key="same")
    other = EventInput(external_id="m2", action="check_in", idempotency_key="same")

    results = record_events(client=None, events=[first, again, other])

    assert results[0].result.replayed is False
    assert results[1].result.replayed is True
    assert results[1].result.event_id == results[0].result.event_id
    assert results[1].result.outcome == results[0].result.outcome
    assert isinstance(results[2].error, IdempotencyConflict)
    assert MemberStanding.objects.get(member__external_id="m1").events_count == 1
    assert not MemberStanding.objects.filter(member__external_id="m2").exists()


def test_a_dry_run_batch_stores_nothing_and_counts_each_item_after_the_one_before(
    demo_program,
):
    # The daily check-in rule credits once a day: in a dry run of two, the second is capped.
    events = [
        EventInput(external_id="m1", action="check_in", idempotency_key=f"k{i}") for i in range(2)
    ]

    results = record_events(client=None, events=events, dry_run=True)

    assert [r.result.outcome["points"] > 0 for r in results] == [True, False]
    assert results[1].result.outcome["skipped"][0]["reason"] == "cap_reached"
    assert not Member.objects.filter(external_id="m1").exists()
    assert not LedgerEntry.objects.exists()


def test_a_batch_goes_in_chunks_of_whole_members_and_a_retry_finishes_one_cut_short(
    demo_program, monkeypatch
):
    from loyalty.engine import pipeline as events_module

    monkeypatch.setattr(events_module, "CHUNK_EVENTS", 3)

    batch = [
        EventInput(external_id=member, action="check_in", idempotency_key=f"{member}-{n}")
        for member, count in (("a", 2), ("b", 3), ("c", 1), ("d", 2))
        for n in range(count)
    ]
    chunks = list(
        events_module._chunks(
            sorted(
                [
                    events_module.Item(index=i, event=e, request_hash=e.request_hash())
                    for i, e in enumerate(batch)
                ],
                key=lambda item: item.event.external_id,
            ),
            3,
        )
    )
    # A member's events are never split; a member with more than a chunk's worth goes alone.
    assert [[item.event.external_id for item in chunk] for chunk in chunks] == [
        ["a", "a"],
        ["b", "b", "b"],
        ["c", "d", "d"],
    ]

    # Member b's chunk fails with an error no item answers for: a's chunk is already recorded,
    # b's and those after it are not.
    record = events_module.record_one

    def failing(client, item, *args):
        if item.event.external_id == "b":
            raise RuntimeError("the database went away")
        return record(client, item, *args)

    monkeypatch.setattr(events_module, "record_one", failing)
    with pytest.raises(RuntimeError):
        record_events(client=None, events=batch)
    assert MemberStanding.objects.get(member__external_id="a").events_count == 2
    assert not MemberStanding.objects.filter(member__external_id__in=["b", "c", "d"]).exists()

    # Posted again, the batch is finished: a's events answer as replays, the others are new.
    monkeypatch.setattr(events_module, "record_one", record)
    results = record_events(client=None, events=batch)
    assert [r.result.replayed for r in results] == [True, True] + [False] * 6
    assert {
        s.member.external_id: s.events_count
        for s in MemberStanding.objects.select_related("member")
    } == {"a": 2, "b": 3, "c": 1, "d": 2}
