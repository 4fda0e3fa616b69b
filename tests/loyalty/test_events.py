"""Recording events: rules, conditions, caps, cooldowns, campaigns, stacking, idempotency."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.errors import MemberNotFound
from accounts.models import Member
from core.idempotency import IdempotencyConflict
from loyalty.engine.events import EventInput, record_event, record_events
from loyalty.models import EarningRule, Event, LedgerEntry, Program, RuleCap
from loyalty.program.compiled import earning_rule_publish
from tests.factories import MemberFactory, make_rule
from tests.helpers import assert_balances_match_ledger
from tests.loyalty.conftest import local

pytestmark = pytest.mark.django_db


# --- weights -----------------------------------------------------------------------------------


def test_an_event_earns_per_occurrence_and_per_amount(earn):
    make_rule("purchase", growth_per_occurrence=10, unit_attribute="amount", points_per_unit=1)
    outcome = earn(amount="199.00")
    assert outcome["status"] == "credited"
    assert (outcome["growth"], outcome["points"]) == (10, 199)
    assert outcome["balances"] == {"growth": 10, "points": 199, "points_pending": 0}
    assert_balances_match_ledger()


def test_each_credit_names_the_rule_version_that_produced_it(earn):
    rule = make_rule("review", code="review", points_per_occurrence=5)
    first = earn(action="review")
    rule.points_per_occurrence = 8
    rule.save()
    earning_rule_publish(rule=rule)
    second = earn(action="review")
    assert [first["credits"][0]["rule_version"], second["credits"][0]["rule_version"]] == [1, 2]
    versions = sorted(
        LedgerEntry.objects.filter(currency="points").values_list("rule_version__version", "amount")
    )
    assert versions == [(1, 5), (2, 8)]
    # And the event that earned it, as its source (the id is known once the batch is written).
    for entry in LedgerEntry.objects.all():
        assert (entry.source_type, entry.source_id) == ("event", str(entry.event_id))


def test_publishing_an_unchanged_rule_makes_no_new_version(db):
    rule = make_rule("review", points_per_occurrence=5)
    assert earning_rule_publish(rule=rule).version == 1
    assert rule.versions.count() == 1


def test_an_unmet_condition_credits_nothing_and_says_why(earn):
    make_rule("purchase", points_per_occurrence=50, conditions=[("amount", "gte", 100)])
    outcome = earn(amount=99)
    assert outcome["status"] == "not_credited"
    assert outcome["reason"] == "condition_not_met"
    assert "amount gte 100" in outcome["skipped"][0]["detail"]
    assert earn(amount=100)["points"] == 50


def test_an_unknown_action_is_stored_with_its_reason(earn):
    outcome = earn(action="teleport")
    assert outcome["reason"] == "unknown_action"
    assert Event.objects.get().reason == "unknown_action"
    assert not LedgerEntry.objects.exists()


def test_an_inactive_rule_credits_nothing(earn):
    make_rule("share", points_per_occurrence=5, is_active=False)
    assert earn(action="share")["reason"] == "rule_inactive"


def test_unknown_members_are_created_by_default(earn):
    earn("newcomer", action="anything")
    assert Member.objects.filter(external_id="newcomer").exists()


def test_unknown_members_are_refused_when_the_program_says_so(earn):
    Program.objects.update_or_create(pk=1, defaults={"unknown_members": "refuse"})
    from loyalty.program.compiled import program_changed

    program_changed()
    with pytest.raises(MemberNotFound):
        earn("stranger")
    assert not Member.objects.filter(external_id="stranger").exists()
    assert not Event.objects.exists()


# --- caps and cooldowns -----------------------------------------------------------------------


def test_a_daily_cap_counts_local_days_in_the_program_time_zone(earn, settings):
    settings.TIME_ZONE = "Asia/Shanghai"  # UTC+8
    make_rule("check_in", points_per_occurrence=10, caps=[("day", "occurrences", 1)])
    # 23:30 and 23:50 local on 1 March are one local day (but 15:30 and 15:50 UTC).
    assert earn(action="check_in", at=local(2026, 3, 1, 23, 30, tz="Asia/Shanghai"))["points"] == 10
    assert (
        earn(action="check_in", at=local(2026, 3, 1, 23, 50, tz="Asia/Shanghai"))["reason"]
        == "cap_reached"
    )
    # 00:10 local on 2 March is still 1 March in UTC, but a new local day.
    assert earn(action="check_in", at=local(2026, 3, 2, 0, 10, tz="Asia/Shanghai"))["points"] == 10


def test_a_weekly_cap_rolls_over_on_monday_local_time(earn, settings):
    settings.TIME_ZONE = "America/New_York"
    make_rule("review", points_per_occurrence=5, caps=[("week", "occurrences", 2)])
    sunday = local(2026, 3, 8, 12, tz="America/New_York")
    assert [
        earn(action="review", at=sunday + timedelta(minutes=i))["points"] for i in range(3)
    ] == [5, 5, 0]
    monday = local(2026, 3, 9, 0, 1, tz="America/New_York")
    assert earn(action="review", at=monday)["points"] == 5


def test_a_monthly_cap_rolls_over_at_local_month_end(earn, settings):
    settings.TIME_ZONE = "Europe/Berlin"
    make_rule("share", points_per_occurrence=1, caps=[("month", "occurrences", 1)])
    assert earn(action="share", at=local(2026, 1, 31, 23, 59, tz="Europe/Berlin"))["points"] == 1
    assert (
        earn(action="share", at=local(2026, 1, 31, 23, 59, 30, tz="Europe/Berlin"))["points"] == 0
    )
    assert earn(action="share", at=local(2026, 2, 1, 0, 0, tz="Europe/Berlin"))["points"] == 1


def test_a_lifetime_cap_never_rolls_over(earn):
    make_rule("register", points_per_occurrence=100, caps=[("lifetime", "occurrences", 1)])
    assert earn(action="register")["points"] == 100
    later = timezone.now() + timedelta(days=400)
    assert (
        earn(action="register", at=later - timedelta(days=400) + timedelta(seconds=1))["points"]
        == 0
    )


def test_an_amount_cap_clips_the_credit_to_what_is_left(earn):
    make_rule("purchase", unit_attribute="amount", points_per_unit=1, caps=[("day", "points", 500)])
    at = timezone.now()
    assert earn(amount=300, at=at)["points"] == 300
    clipped = earn(amount=300, at=at)
    assert clipped["points"] == 200
    assert clipped["credits"][0]["capped"] is True
    assert earn(amount=300, at=at)["reason"] == "cap_reached"
    assert_balances_match_ledger()


def test_a_growth_cap_clips_growth_only(earn):
    make_rule(
        "browse", growth_per_occurrence=3, points_per_occurrence=1, caps=[("day", "growth", 5)]
    )
    at = timezone.now()
    results = [(o["growth"], o["points"]) for o in (earn(action="browse", at=at) for _ in range(3))]
    assert results == [(3, 1), (2, 1), (0, 1)]


def test_a_cooldown_spaces_credited_occurrences(earn):
    make_rule("share", points_per_occurrence=5, cooldown_seconds=3600)
    start = timezone.now() - timedelta(hours=3)
    assert earn(action="share", at=start)["points"] == 5
    refused = earn(action="share", at=start + timedelta(minutes=59))
    assert refused["reason"] == "cooldown"
    assert earn(action="share", at=start + timedelta(minutes=60))["points"] == 5


def test_a_refused_occurrence_does_not_restart_the_cooldown(earn):
    make_rule("share", points_per_occurrence=5, cooldown_seconds=3600)
    start = timezone.now() - timedelta(hours=3)
    earn(action="share", at=start)
    earn(action="share", at=start + timedelta(minutes=30))
    assert earn(action="share", at=start + timedelta(minutes=61))["points"] == 5


# --- campaigns and stacking -------------------------------------------------------------------


def test_a_campaign_rule_counts_only_inside_its_window(earn):
    now = timezone.now()
    make_rule("purchase", code="base", points_per_occurrence=10)
    make_rule(
        "purchase",
        code="weekend-double",
        points_per_occurrence=10,
        valid_from=now - timedelta(days=1),
        valid_until=now + timedelta(days=1),
    )
    assert earn(at=now)["points"] == 20
    before = earn(at=now - timedelta(days=2))
    assert before["points"] == 10
    assert before["skipped"][0]["reason"] == "rule_inactive"


def test_the_window_end_is_exclusive(earn):
    end = timezone.now() - timedelta(hours=1)
    make_rule(
        "purchase", points_per_occurrence=10, valid_from=end - timedelta(days=1), valid_until=end
    )
    assert earn(at=end - timedelta(microseconds=1))["points"] == 10
    assert earn(at=end)["reason"] == "rule_inactive"


def test_rules_stack_in_priority_order_until_one_stops_further_rules(earn):
    make_rule("purchase", code="base", priority=100, points_per_occurrence=10)
    make_rule(
        "purchase",
        code="vip-only",
        priority=10,
        points_per_occurrence=50,
        stop_further_rules=True,
        conditions=[("vip", "eq", True)],
    )
    stacked = earn(vip=False)
    assert stacked["points"] == 10
    stopped = earn(vip=True)
    assert stopped["points"] == 50
    assert [s["reason"] for s in stopped["skipped"]] == ["stopped_by_rule"]
    assert [c["rule"] for c in stopped["credits"]] == ["vip-only"]


def test_a_new_member_bonus_counts_in_the_first_days_only(earn):
    make_rule("purchase", code="welcome", points_per_occurrence=100, new_members_within_days=7)
    now = timezone.now()
    MemberFactory(external_id="fresh", joined_at=now - timedelta(days=6))
    MemberFactory(external_id="old", joined_at=now - timedelta(days=8))
    assert earn("fresh", at=now)["points"] == 100
    assert earn("old", at=now)["reason"] == "condition_not_met"


# --- idempotency and dry runs -----------------------------------------------------------------


def test_a_retry_returns_the_first_outcome_and_credits_nothing_twice(earn):
    make_rule("purchase", points_per_occurrence=10)
    first = earn(key="order-1", amount=5)
    again = earn(key="order-1", amount=5)
    assert again == first
    assert Event.objects.count() == 1
    assert LedgerEntry.objects.count() == 1


def test_a_replay_is_flagged_as_such(db):
    make_rule("purchase", points_per_occurrence=10)
    event = EventInput(external_id="m", action="purchase", idempotency_key="k")
    assert record_event(client=None, event=event).replayed is False
    assert record_event(client=None, event=event).replayed is True


def test_the_same_key_with_another_body_is_a_conflict(earn):
    make_rule("purchase", points_per_occurrence=10)
    earn(key="order-1", amount=5)
    with pytest.raises(IdempotencyConflict):
        earn(key="order-1", amount=6)
    assert Event.objects.count() == 1


def test_a_dry_run_answers_the_same_and_stores_nothing(earn):
    make_rule("purchase", points_per_occurrence=10, caps=[("day", "occurrences", 1)])
    preview = earn("someone-new", dry_run=True)
    assert preview["points"] == 10
    assert not Event.objects.exists()
    assert not LedgerEntry.objects.exists()
    assert not Member.objects.filter(external_id="someone-new").exists()
    assert earn("someone-new")["points"] == 10
    assert earn("someone-new", dry_run=True)["reason"] == "cap_reached"


def test_a_batch_reports_each_item_in_posted_order(db):
    make_rule("purchase", points_per_occurrence=10)
    events = [
        EventInput(external_id="zed", action="purchase", idempotency_key="a"),
        MemberNotFound(),
        EventInput(external_id="amy", action="purchase", idempotency_key="b"),
        EventInput(external_id="zed", action="purchase", idempotency_key="a", attributes={"x": 1}),
    ]
    results = [r.as_dict() for r in record_events(client=None, events=events)]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert [r["ok"] for r in results] == [True, False, True, False]
    assert results[0]["outcome"]["member"] == "zed"
    assert results[3]["error"]["code"] == "idempotency_conflict"
    assert_balances_match_ledger()


def test_rule_caps_live_with_the_rule_across_versions(earn):
    rule = make_rule("check_in", points_per_occurrence=10, caps=[("day", "occurrences", 1)])
    at = timezone.now()
    earn(action="check_in", at=at)
    EarningRule.objects.filter(pk=rule.pk).update(points_per_occurrence=20)
    earning_rule_publish(rule=rule)
    assert earn(action="check_in", at=at)["reason"] == "cap_reached"
    RuleCap.objects.filter(rule=rule).update(limit=2)
    earning_rule_publish(rule=rule)
    assert earn(action="check_in", at=at)["points"] == 20
