"""Points over time: expiry policies in the program's time zone, spends closest to expiry
first, pending points and their activation."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.ledger.points import (
    InsufficientPoints,
    activate_pending_points,
    expire_points,
    points_debit_locked,
    points_expiring,
)
from loyalty.ledger.session import member_session
from loyalty.models import EntryKind, LedgerEntry, MemberStanding, PointLot, Program, SourceType
from loyalty.periods import expiry_at
from loyalty.program.compiled import program_changed
from tests.factories import make_rule
from tests.helpers import assert_balances_match_ledger
from tests.loyalty.conftest import local

pytestmark = pytest.mark.django_db
SH = "Asia/Shanghai"


# --- the policies -------------------------------------------------------------------------------


def test_days_after_earning_ends_with_the_local_day(settings):
    settings.TIME_ZONE = SH
    earned = local(2026, 1, 30, 23, 30, tz=SH)  # still 30 Jan locally, 15:30 UTC
    assert expiry_at(policy="days", n=2, yearly_date="", earned_at=earned) == local(
        2026, 2, 2, tz=SH
    )


def test_end_of_month_counts_the_local_month(settings):
    settings.TIME_ZONE = SH
    # 31 Dec 20:00 UTC is already 1 January in Shanghai.
    new_year_locally = local(2026, 12, 31, 20, tz="UTC")
    assert expiry_at(
        policy="end_of_month", n=0, yearly_date="", earned_at=new_year_locally
    ) == local(2027, 2, 1, tz=SH)
    assert expiry_at(
        policy="end_of_month", n=0, yearly_date="", earned_at=local(2026, 12, 15, tz=SH)
    ) == local(2027, 1, 1, tz=SH)
    assert expiry_at(
        policy="end_of_month", n=12, yearly_date="", earned_at=local(2026, 3, 31, tz=SH)
    ) == local(2027, 4, 1, tz=SH)


def test_a_yearly_date_n_years_after_the_year_of_earning(settings):
    settings.TIME_ZONE = SH
    earned = local(2026, 6, 1, tz=SH)
    assert expiry_at(policy="yearly_date", n=1, yearly_date="12-31", earned_at=earned) == local(
        2028, 1, 1, tz=SH
    )
    assert expiry_at(policy="yearly_date", n=0, yearly_date="12-31", earned_at=earned) == local(
        2027, 1, 1, tz=SH
    )
    # A date already past in the year of earning moves on a year.
    assert expiry_at(policy="yearly_date", n=0, yearly_date="03-31", earned_at=earned) == local(
        2027, 4, 1, tz=SH
    )
    assert expiry_at(policy="yearly_date", n=1, yearly_date="02-29", earned_at=earned) == local(
        2027, 3, 1, tz=SH
    )


def test_never_is_never():
    assert expiry_at(policy="never", n=0, yearly_date="", earned_at=timezone.now()) is None


# --- lots in the engine -------------------------------------------------------------------------


def test_a_rule_overrides_the_program_default(earn):
    Program.objects.update_or_create(
        pk=1, defaults={"points_expiry": "days", "points_expiry_n": 10}
    )
    program_changed()
    make_rule("review", points_per_occurrence=10)
    make_rule("purchase", points_per_occurrence=10, points_expiry="never")
    at = local(2026, 5, 1, 12)
    earn(action="review", at=at)
    earn(action="purchase", at=at)
    expiries = dict(
        PointLot.objects.values_list("entry__rule_version__rule__action__code", "expires_at")
    )
    assert expiries == {"review": local(2026, 5, 12), "purchase": None}


def test_lapsed_lots_expire_once_and_only_what_is_left(earn):
    make_rule("purchase", points_per_occurrence=100, points_expiry="days", points_expiry_n=30)
    at = timezone.now() - timedelta(days=40)
    earn(at=at)
    spend(30)
    report = expire_points()
    assert (report.lots, report.points) == (1, 70)
    standing = MemberStanding.objects.get()
    assert (standing.points, standing.points_expired, standing.points_spent) == (0, 70, 30)
    assert LedgerEntry.objects.filter(kind=EntryKind.EXPIRE).get().amount == -70
    assert expire_points().lots == 0
    assert_balances_match_ledger()


def test_lots_not_yet_lapsed_stay(earn):
    make_rule("purchase", points_per_occurrence=100, points_expiry="days", points_expiry_n=30)
    earn(at=timezone.now() - timedelta(days=20))
    assert expire_points().lots == 0
    assert MemberStanding.objects.get().points == 100


def spend(amount: int, external_id: str = "m1"):
    with member_session(MemberStanding.objects.get(member__external_id=external_id).pk) as session:
        return points_debit_locked(
            work=session.work,
            standing=session.standing,
            amount=amount,
            kind=EntryKind.SPEND,
            source_type=SourceType.REDEMPTION,
        )


def test_spends_take_the_lots_closest_to_expiry_first(earn):
    make_rule("share", code="forever", points_per_occurrence=100, points_expiry="never")
    make_rule(
        "review", code="late", points_per_occurrence=100, points_expiry="days", points_expiry_n=60
    )
    make_rule(
        "check_in", code="soon", points_per_occurrence=100, points_expiry="days", points_expiry_n=10
    )
    at = timezone.now()
    for action in ("share", "review", "check_in"):
        earn(action=action, at=at)
    spend(150)
    remaining = dict(PointLot.objects.values_list("entry__rule_version__rule__code", "remaining"))
    assert remaining == {"soon": 0, "late": 50, "forever": 100}
    spend(100)
    remaining = dict(PointLot.objects.values_list("entry__rule_version__rule__code", "remaining"))
    assert remaining == {"soon": 0, "late": 0, "forever": 50}
    assert_balances_match_ledger()


def test_equal_expiry_lots_are_spent_oldest_first(earn):
    make_rule("purchase", points_per_occurrence=10)
    for _ in range(3):
        earn()
    spend(15)
    assert list(PointLot.objects.order_by("id").values_list("remaining", flat=True)) == [0, 5, 10]


def test_a_spend_over_more_lots_than_one_read_takes_them_in_order(earn, monkeypatch):
    from loyalty.ledger import lots

    monkeypatch.setattr(lots, "TAKE_BATCH", 2)
    make_rule("purchase", points_per_occurrence=10)
    for _ in range(5):
        earn()
    spend(1)  # one lot read, one point taken
    spend(34)  # reads of two lots at most, then of the one point left to take
    assert list(PointLot.objects.order_by("id").values_list("remaining", flat=True)) == [
        0,
        0,
        0,
        5,
        10,
    ]
    assert_balances_match_ledger()


def test_a_spend_beyond_the_balance_is_refused_and_changes_nothing(earn):
    make_rule("purchase", points_per_occurrence=10)
    earn()
    with pytest.raises(InsufficientPoints):
        spend(11)
    assert MemberStanding.objects.get().points == 10
    assert not LedgerEntry.objects.filter(kind=EntryKind.SPEND).exists()


def test_points_expiring_are_listed_by_date(earn):
    make_rule("purchase", points_per_occurrence=100, points_expiry="days", points_expiry_n=30)
    make_rule("review", points_per_occurrence=20, points_expiry="days", points_expiry_n=30)
    at = local(2026, 5, 1, 12)
    earn(at=at)
    earn(action="review", at=at)
    earn(at=at + timedelta(days=1))
    from accounts.models import Member

    assert points_expiring(member=Member.objects.get()) == [
        {"expires_at": local(2026, 6, 1), "points": 120},
        {"expires_at": local(2026, 6, 2), "points": 100},
    ]


# --- pending points -----------------------------------------------------------------------------


def test_held_points_are_pending_until_the_hold_ends(earn):
    make_rule("purchase", growth_per_occurrence=5, points_per_occurrence=100, hold_days=14)
    at = timezone.now() - timedelta(days=10)
    outcome = earn(at=at)
    assert outcome["balances"] == {"growth": 5, "points": 0, "points_pending": 100}
    standing = MemberStanding.objects.get()
    assert (standing.points, standing.points_pending, standing.points_earned) == (0, 100, 0)
    assert activate_pending_points().lots == 0
    with pytest.raises(InsufficientPoints):
        spend(1)
    report = activate_pending_points(at=at + timedelta(days=14))
    assert (report.lots, report.points) == (1, 100)
    standing = MemberStanding.objects.get()
    assert (standing.points, standing.points_pending, standing.points_earned) == (100, 0, 100)
    assert activate_pending_points(at=at + timedelta(days=15)).lots == 0
    assert_balances_match_ledger()


def test_growth_is_not_held(earn):
    make_rule("purchase", growth_per_occurrence=5, points_per_occurrence=100, hold_days=14)
    earn()
    assert MemberStanding.objects.get().growth == 5


def test_the_member_summary_says_what_expires_when(api):
    make_rule(
        "purchase",
        points_per_occurrence=300,
        points_expiry="yearly_date",
        points_expiry_n=0,
        points_expiry_date="12-31",
    )
    api.post(
        "/api/v1/events", json={"external_id": "m1", "action": "purchase", "idempotency_key": "k"}
    )
    expiring = api.get("/api/v1/members/m1").json()["expiring"]
    assert len(expiring) == 1
    assert expiring[0]["points"] == 300
