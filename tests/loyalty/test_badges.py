"""Badges: every criterion kind, repeatable and secret badges, bonuses, back-fill, revocation."""

import pytest

from accounts.models import Member
from loyalty.engine.reversals import event_reverse
from loyalty.gamification.badges import badge_backfill, badge_grant
from loyalty.models import BadgeAward, EntryKind, LedgerEntry, MemberStanding, PointLot
from loyalty.selectors import member_badges
from tests.factories import (
    ActionFactory,
    make_badge,
    make_quest,
    make_rule,
    make_streak,
    make_tiers,
)
from tests.helpers import assert_balances_match_ledger
from tests.loyalty.conftest import local

pytestmark = pytest.mark.django_db


def held(code: str, member: str = "m1") -> int:
    return BadgeAward.objects.filter(
        badge__code=code, member__external_id=member, revoked_at__isnull=True
    ).count()


def test_an_action_count_badge_is_awarded_in_the_event_with_its_bonus(earn):
    make_badge(
        "first-purchase",
        "action_count",
        action=ActionFactory(code="purchase"),
        threshold=1,
        bonus_points=50,
        bonus_growth=5,
    )
    outcome = earn()
    assert outcome["badges_awarded"] == [{"badge": "first-purchase", "level": "", "sequence": 1}]
    bonus = LedgerEntry.objects.filter(kind=EntryKind.BONUS, source_type="badge")
    assert sorted(bonus.values_list("currency", "amount")) == [("growth", 5), ("points", 50)]
    # The bonus names the award it was given for (written in the same flush).
    award = BadgeAward.objects.get()
    assert set(bonus.values_list("source_id", flat=True)) == {str(award.pk)}
    assert PointLot.objects.filter(entry__in=bonus).get().amount == 50
    assert earn()["badges_awarded"] == []
    assert held("first-purchase") == 1
    assert_balances_match_ledger()


def test_levels_follow_the_count(earn):
    review = ActionFactory(code="review")
    for level, threshold in (("bronze", 1), ("silver", 3), ("gold", 5)):
        make_badge(
            f"reviewer-{level}", "action_count", action=review, threshold=threshold, level=level
        )
    awarded = [b["level"] for _ in range(5) for b in earn(action="review")["badges_awarded"]]
    assert awarded == ["bronze", "silver", "gold"]


def test_a_repeatable_badge_is_awarded_at_every_multiple(earn):
    make_badge(
        "every-3-shares",
        "action_count",
        action=ActionFactory(code="share"),
        threshold=3,
        repeatable=True,
    )
    for _ in range(7):
        earn(action="share")
    assert list(BadgeAward.objects.order_by("sequence").values_list("sequence", flat=True)) == [
        1,
        2,
    ]


def test_a_streak_badge(earn):
    streak = make_streak()
    make_badge("streak-3", "streak_length", streak=streak, threshold=3)
    for day in (1, 2, 3):
        outcome = earn(action="check_in", at=local(2026, 3, day, 12))
    assert outcome["badges_awarded"][0]["badge"] == "streak-3"


def test_a_growth_badge_counts_the_events_own_growth(earn):
    make_rule("purchase", growth_per_occurrence=60)
    make_badge("hundred-growth", "growth_reached", threshold=100)
    assert earn()["badges_awarded"] == []
    assert earn()["badges_awarded"][0]["badge"] == "hundred-growth"


def test_a_tier_badge_follows_an_upgrade(earn):
    make_rule("purchase", growth_per_occurrence=100)
    _, gold = make_tiers(("member", 0), ("gold", 100))
    make_badge("gold-member", "tier_reached", tier=gold, secret=True)
    assert earn()["badges_awarded"][0]["badge"] == "gold-member"


def test_a_quests_completed_badge(earn):
    make_quest("q", "daily", [("check_in", 1)])
    make_badge("two-quests", "quests_completed", threshold=2)
    assert earn(action="check_in", at=local(2026, 3, 1, 9))["badges_awarded"] == []
    outcome = earn(action="check_in", at=local(2026, 3, 2, 9))
    assert outcome["quests_completed"] == ["q"]
    assert outcome["badges_awarded"][0]["badge"] == "two-quests"


def test_a_manual_badge_is_only_granted_by_hand(earn, admin_user):
    badge = make_badge("helper", "manual")
    earn()
    assert held("helper") == 0
    badge_grant(member_id=Member.objects.get().pk, badge=badge, operator=admin_user)
    assert BadgeAward.objects.get().operator == admin_user


def test_secret_badges_stay_hidden_until_earned(earn):
    make_rule("purchase", growth_per_occurrence=100)
    _, gold = make_tiers(("member", 0), ("gold", 1000))
    make_badge("gold-member", "tier_reached", tier=gold, secret=True)
    make_badge("first-review", "action_count", action=ActionFactory(code="review"), threshold=2)
    earn()
    earn(action="review")
    view = member_badges(Member.objects.get())
    assert view["earned"] == []
    assert [(b["code"], b["progress"], b["threshold"]) for b in view["in_progress"]] == [
        ("first-review", 1, 2)
    ]
    earn(amount=0, growth_boost=True)
    for _ in range(9):
        earn()
    assert [b["code"] for b in member_badges(Member.objects.get())["earned"]] == ["gold-member"]


def test_a_new_badge_is_back_filled_quietly_for_members_who_qualify(earn):
    make_rule("review", points_per_occurrence=1)
    for member in ("a", "b", "c"):
        for _ in range({"a": 3, "b": 1, "c": 5}[member]):
            earn(member, action="review")
    badge = make_badge(
        "three-reviews",
        "action_count",
        action=ActionFactory(code="review"),
        threshold=3,
        bonus_points=10,
    )
    assert badge_backfill(badge=badge, chunk_size=1) == 2
    assert sorted(BadgeAward.objects.values_list("member__external_id", "backfilled")) == [
        ("a", True),
        ("c", True),
    ]
    assert badge_backfill(badge=badge) == 0  # once only
    assert MemberStanding.objects.get(member__external_id="a").points == 3 + 10
    assert_balances_match_ledger()


def test_a_reversal_revokes_a_badge_when_the_operator_chose_so(db):
    from loyalty.engine.events import EventInput, record_event

    purchase = ActionFactory(code="purchase")
    make_rule("purchase", points_per_occurrence=10)
    make_badge(
        "first-purchase", "action_count", action=purchase, threshold=1, revoke_on_reversal=True
    )
    make_badge("kept", "action_count", action=purchase, threshold=1)
    event_id = record_event(
        client=None, event=EventInput(external_id="m1", action="purchase", idempotency_key="o1")
    ).event_id
    result = event_reverse(client=None, event_id=event_id, idempotency_key="r1").as_dict()
    assert result["badges_revoked"] == ["first-purchase"]
    assert held("first-purchase") == 0
    assert held("kept") == 1
    record_event(
        client=None, event=EventInput(external_id="m1", action="purchase", idempotency_key="o2")
    )
    assert held("first-purchase") == 1
    assert (
        BadgeAward.objects.filter(badge__code="first-purchase").count() == 2
    )  # the revoked one stays on record


def test_the_answer_counts_every_credit_the_event_set_off(earn):
    from loyalty.models import Gift
    from tests.factories import make_quest

    make_rule("purchase", points_per_occurrence=9000, growth_per_occurrence=90)
    make_badge(
        "first-purchase",
        "action_count",
        action=ActionFactory(code="purchase"),
        threshold=1,
        bonus_points=50,
    )
    make_quest("first-order", "onboarding", [("purchase", 1)], reward_points=20, reward_growth=2)
    Gift.objects.create(kind=Gift.Kind.WELCOME, points=100, growth=10)

    outcome = earn()

    standing = MemberStanding.objects.get()
    assert (outcome["points"], outcome["growth"]) == (standing.points, standing.growth)
    assert (outcome["points"], outcome["growth"]) == (9170, 102)
    assert sorted((b["source"], b["code"], b["points"]) for b in outcome["bonuses"]) == [
        ("badge", "first-purchase", 50),
        ("gift", "welcome", 100),
        ("quest", "first-order", 20),
    ]
    assert [c["points"] for c in outcome["credits"]] == [9000]
    assert outcome["balances"]["points"] == 9170
    assert_balances_match_ledger()


def test_a_tier_badge_follows_an_operators_growth_adjustment(earn):
    from loyalty.engine.adjustments import adjust

    _, gold = make_tiers(("member", 0), ("gold", 100))
    make_badge("gold-member", "tier_reached", tier=gold, bonus_points=25)
    earn(action="review")  # the member exists, at the first tier
    member = Member.objects.get()

    adjust(member=member, currency="growth", amount=100, reason="goodwill", idempotency_key="g")

    assert held("gold-member") == 1
    assert MemberStanding.objects.get().points == 25
    assert_balances_match_ledger()


def test_a_tier_badge_follows_an_operators_tier_lock(earn):
    from loyalty.engine.tier_review import tier_lock

    _, gold = make_tiers(("member", 0), ("gold", 100))
    make_badge("gold-member", "tier_reached", tier=gold)
    earn(action="review")

    tier_lock(member=Member.objects.get(), tier=gold)

    assert held("gold-member") == 1
