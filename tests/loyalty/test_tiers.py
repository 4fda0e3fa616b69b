"""Tiers: upgrade at once, multipliers from privileges, review with grace, operator locks."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Member
from loyalty.engine.tier_review import review_tiers, tier_lock
from loyalty.ledger.session import member_session
from loyalty.models import MemberStanding, Tier, TierChange
from loyalty.program.compiled import compiled_program
from loyalty.tiers.moves import tier_review_member
from tests.factories import make_rule, make_tiers
from tests.helpers import assert_balances_match_ledger

pytestmark = pytest.mark.django_db


def standing(external_id="m1") -> MemberStanding:
    return MemberStanding.objects.select_related("tier").get(member__external_id=external_id)


def test_growth_crossing_a_threshold_upgrades_at_once(earn):
    make_rule("purchase", growth_per_occurrence=60)
    make_tiers(("member", 0), ("silver", 100), ("gold", 500))
    assert earn()["tier"] == "member"
    upgraded = earn()
    assert upgraded["tier_change"] == {"from": "member", "to": "silver", "reason": "upgrade"}
    assert standing().tier.code == "silver"
    history = list(TierChange.objects.order_by("id").values_list("to_tier__code", "reason"))
    assert history == [("member", "upgrade"), ("silver", "upgrade")]


def test_a_big_jump_skips_straight_to_the_highest_qualifying_tier(earn):
    make_rule("purchase", unit_attribute="amount", growth_per_unit=1)
    make_tiers(("member", 0), ("silver", 100), ("gold", 500))
    assert earn(amount=600)["tier_change"]["to"] == "gold"
    assert TierChange.objects.filter(to_tier__code="silver").count() == 0


def test_the_points_multiplier_privilege_applies_to_later_events(earn):
    make_rule("purchase", growth_per_occurrence=100, points_per_occurrence=10)
    make_tiers(("member", 0), ("gold", 100, {"points_multiplier": {"multiplier": "2"}}))
    assert earn()["points"] == 10  # credited at "member", then upgraded
    assert earn()["points"] == 20


def test_the_summary_of_privileges_includes_host_privileges(earn):
    make_rule("purchase", growth_per_occurrence=1)
    make_tiers(("member", 0, {"host": {"shipping": "free"}}))
    earn()
    tier = compiled_program().tier(standing().tier_id)
    assert tier.privileges[0]["params"] == {"shipping": "free"}


def test_a_rolling_window_counts_only_recent_growth(earn):
    make_rule("purchase", growth_per_occurrence=60)
    make_tiers(("member", 0), ("silver", 100), window="rolling_days", window_days=30)
    now = timezone.now()
    earn(at=now - timedelta(days=40))
    outcome = earn(at=now)
    assert outcome["tier"] == "member"  # 120 lifetime, but 60 in the window
    assert earn(at=now)["tier"] == "silver"


# --- the review ---------------------------------------------------------------------------------


@pytest.fixture
def windowed_gold(earn):
    """A gold member whose qualifying growth will fall out of a 30-day window."""
    make_rule("purchase", growth_per_occurrence=100)
    make_tiers(("member", 0), ("gold", 100), window="rolling_days", window_days=30, grace_days=7)
    now = timezone.now()
    earn(at=now - timedelta(days=1))
    assert standing().tier.code == "gold"
    return now


def test_the_review_keeps_a_qualifying_member(windowed_gold):
    report = review_tiers(at=windowed_gold)
    assert (report.reviewed, report.downgraded, report.grace_started) == (1, 0, 0)


def test_below_threshold_starts_grace_and_downgrades_only_after_it(windowed_gold):
    in_40_days = windowed_gold + timedelta(days=40)
    assert review_tiers(at=in_40_days).grace_started == 1
    assert standing().tier.code == "gold"
    assert standing().grace_until == in_40_days + timedelta(days=7)
    assert review_tiers(at=in_40_days + timedelta(days=6)).downgraded == 0
    assert review_tiers(at=in_40_days + timedelta(days=7)).downgraded == 1
    assert standing().tier.code == "member"
    assert TierChange.objects.filter(reason="review", to_tier__code="member").count() == 1


def test_earning_back_during_grace_ends_it(windowed_gold, earn):
    in_40_days = windowed_gold + timedelta(days=40)
    review_tiers(at=in_40_days)
    assert standing().grace_until is not None
    earn(at=timezone.now())
    # The event's own check sees growth back in the window at "now".
    program = compiled_program()
    with member_session(standing().pk) as session:
        move = tier_review_member(
            work=session.work, standing=session.standing, program=program, at=timezone.now()
        )
    assert move is None
    assert standing().grace_until is None


def test_a_locked_tier_is_never_lowered_by_the_review(windowed_gold):
    member = Member.objects.get(external_id="m1")
    tier_lock(member=member, tier=Tier.objects.get(code="gold"))
    assert review_tiers(at=windowed_gold + timedelta(days=100)).downgraded == 0
    assert standing().tier.code == "gold"


def test_locking_above_the_current_tier_raises_the_member(earn):
    make_rule("purchase", growth_per_occurrence=1)
    make_tiers(("member", 0), ("silver", 100), ("gold", 500))
    earn()
    move = tier_lock(
        member=Member.objects.get(external_id="m1"), tier=Tier.objects.get(code="silver")
    )
    assert move.to_tier.code == "silver"
    assert standing().locked_tier.code == "silver"


def test_a_downgrade_stops_at_the_locked_floor(earn):
    make_rule("purchase", growth_per_occurrence=600)
    make_tiers(
        ("member", 0),
        ("silver", 100),
        ("gold", 500),
        window="rolling_days",
        window_days=30,
        grace_days=0,
    )
    earn(at=timezone.now())
    tier_lock(member=Member.objects.get(external_id="m1"), tier=Tier.objects.get(code="silver"))
    review_tiers(at=timezone.now() + timedelta(days=60))
    assert standing().tier.code == "silver"


def test_a_second_review_the_same_day_changes_nothing(windowed_gold):
    at = windowed_gold + timedelta(days=50)
    review_tiers(at=at)
    review_tiers(at=at + timedelta(days=7))
    changes = TierChange.objects.count()
    assert review_tiers(at=at + timedelta(days=7)).downgraded == 0
    assert TierChange.objects.count() == changes
    assert_balances_match_ledger()


def test_a_calendar_year_window_restarts_on_new_year_local_time(earn, settings):
    settings.TIME_ZONE = "Asia/Tokyo"
    from tests.loyalty.conftest import local

    make_rule("purchase", growth_per_occurrence=60)
    make_tiers(("member", 0), ("silver", 100), window="calendar_year")
    earn(at=local(2025, 12, 31, 23, 0, tz="Asia/Tokyo"))
    assert earn(at=local(2026, 1, 1, 0, 30, tz="Asia/Tokyo"))["tier"] == "member"
