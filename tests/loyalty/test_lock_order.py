"""Locks in one global order: a chunk locks every standing in ascending member id, members it
finds late included, and a chunk the database rolls back to break a deadlock is run again."""

import threading
import time

import pytest
from django.db import connection, connections
from django.utils import timezone

from accounts.models import Member
from loyalty.engine import pipeline
from loyalty.engine.events import EventInput, record_event, record_events
from loyalty.models import Event, MemberStanding
from loyalty.persistence import locks
from tests.factories import make_rule
from tests.helpers import assert_balances_match_ledger

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _event(member: str, key: str) -> EventInput:
    return EventInput(
        external_id=member, action="purchase", idempotency_key=key, occurred_at=timezone.now()
    )


def _low_member_without_standing_and_high_member_with_one() -> tuple[Member, Member]:
    """``low`` exists (as the host app's PUT /members makes it) but has no standing yet; ``high``
    was made after it and has earned before."""
    low = Member.objects.create(external_id="low")
    record_event(client=None, event=_event("high", "high-0"))
    high = Member.objects.get(external_id="high")
    assert low.pk < high.pk and not MemberStanding.objects.filter(pk=low.pk).exists()
    return low, high


def test_a_batch_locks_a_member_found_late_in_ascending_order(monkeypatch):
    make_rule("purchase", points_per_occurrence=10)
    low, high = _low_member_without_standing_and_high_member_with_one()
    locked: list[list[int]] = []  # per locking statement, the member ids it locked
    lock_standings_of, lock_some = pipeline.lock_standings_of, locks._locked

    def spy_of(external_ids):
        standings, revision = lock_standings_of(external_ids)
        locked.append(sorted(standings))
        return standings, revision

    def spy(member_ids):
        standings, revision = lock_some(member_ids)
        locked.append(sorted(standings))
        return standings, revision

    monkeypatch.setattr(pipeline, "lock_standings_of", spy_of)
    monkeypatch.setattr(locks, "_locked", spy)
    results = record_events(client=None, events=[_event("high", "high-1"), _event("low", "low-1")])

    assert all(r.error is None for r in results)
    # The first attempt locked ``high`` and gave it up on finding ``low`` below it; the attempt
    # that recorded the events locked ``low``, then ``high``: ascending, creation included.
    assert locked == [[high.pk], [low.pk], [high.pk]]
    assert Event.objects.count() == 3
    assert_balances_match_ledger()


def test_a_new_member_is_locked_after_the_others_in_the_same_attempt(monkeypatch):
    make_rule("purchase", points_per_occurrence=10)
    _, high = _low_member_without_standing_and_high_member_with_one()
    attempts = []
    record_locked = pipeline._record_locked

    def counting(*args, **kwargs):
        attempts.append(kwargs["ordered"])
        return record_locked(*args, **kwargs)

    monkeypatch.setattr(pipeline, "_record_locked", counting)
    results = record_events(client=None, events=[_event("high", "high-1"), _event("new", "new-1")])

    assert all(r.error is None for r in results)
    assert attempts == [False]  # a new member's id is above every other: one attempt
    assert Member.objects.get(external_id="new").pk > high.pk
    assert_balances_match_ledger()


def _waiting_on_a_lock(count: int = 1, timeout: float = 10.0) -> None:
    """Wait until ``count`` other backends wait on a row lock."""
    deadline = time.monotonic() + timeout
    with connections["default"].cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            )
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.02)
    raise AssertionError("no backend waited on a lock")


def _in_thread(work, results: dict, name: str) -> threading.Thread:
    def run() -> None:
        try:
            results[name] = work()
        except Exception as error:  # reported to the test, which asserts on it
            results[name] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _race(
    monkeypatch, first: list[EventInput], second: list[EventInput], *, meanwhile=None, then=None
):
    """Batch 1 (``first``) pauses once its first statement has locked its standings; meanwhile
    ``meanwhile()`` runs, then batch 2 (``second``) starts and waits on a lock batch 1 holds;
    batch 1 goes on (after ``then()``, in its own transaction). Both must be recorded whole."""
    first_locked, go_on = threading.Event(), threading.Event()
    lock_standings_of = pipeline.lock_standings_of
    paused = []

    def pausing_once(external_ids):
        found = lock_standings_of(external_ids)
        if not paused:
            paused.append(True)
            first_locked.set()
            go_on.wait(10)
            if then is not None:
                then()
        return found

    monkeypatch.setattr(pipeline, "lock_standings_of", pausing_once)
    results: dict = {}
    batch_1 = _in_thread(lambda: record_events(client=None, events=first), results, "batch 1")
    assert first_locked.wait(10)
    if meanwhile is not None:
        meanwhile()
    batch_2 = _in_thread(lambda: record_events(client=None, events=second), results, "batch 2")
    _waiting_on_a_lock()
    go_on.set()
    batch_1.join(30)
    batch_2.join(30)
    for name in ("batch 1", "batch 2"):
        assert not isinstance(results[name], Exception), results[name]
        assert all(item.error is None for item in results[name]), results[name]


def test_a_member_whose_standing_appears_meanwhile_does_not_deadlock_two_batches(monkeypatch):
    """Batch 1 locks ``high`` (``low`` has no standing yet); meanwhile ``low`` gets a standing
    and batch 2 locks it, then waits for ``high``. Locking ``low`` next, batch 1 would wait for
    batch 2 in a circle; instead it gives ``high`` up and locks both in order."""
    make_rule("purchase", points_per_occurrence=10)
    _low_member_without_standing_and_high_member_with_one()
    _race(
        monkeypatch,
        [_event("low", "1-low"), _event("high", "1-high")],
        [_event("low", "2-low"), _event("high", "2-high")],
        meanwhile=lambda: record_event(client=None, event=_event("low", "low-0")),
    )
    assert MemberStanding.objects.get(member__external_id="low").events_count == 3
    assert MemberStanding.objects.get(member__external_id="high").events_count == 3
    assert_balances_match_ledger()


def test_a_chunk_rolled_back_to_break_a_deadlock_is_run_again(monkeypatch):
    """A real deadlock: batch 2 holds ``low`` and waits for ``high``, which batch 1 holds while
    something in its transaction asks for ``low``. The database rolls one back; the pipeline
    runs that chunk again, and both batches are recorded."""
    make_rule("purchase", points_per_occurrence=10)
    low, _ = _low_member_without_standing_and_high_member_with_one()
    record_event(client=None, event=_event("low", "low-0"))

    def lock_low_too() -> None:
        with connection.cursor() as cursor:  # batch 1's own connection
            cursor.execute(
                "SELECT 1 FROM loyalty_memberstanding WHERE member_id = %s FOR UPDATE", [low.pk]
            )

    _race(
        monkeypatch,
        [_event("high", "1-high")],
        [_event("low", "2-low"), _event("high", "2-high")],
        then=lock_low_too,
    )
    assert MemberStanding.objects.get(member__external_id="high").events_count == 3
    assert MemberStanding.objects.get(member__external_id="low").events_count == 2
    assert_balances_match_ledger()
