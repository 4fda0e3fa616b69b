"""Targeting in the event flow: earning rules whose conditions read the member (tier, state,
attributes, the N-th occurrence of the action, segments) decide the credit; a segment read in
the flow selects the same members as the segment's database filter."""

import pytest
from django.utils import timezone

from accounts.models import Member
from loyalty.engine.events import EventInput, record_event
from loyalty.models import MemberActivity, MemberStanding, Segment, SegmentCondition
from loyalty.periods import local_date
from loyalty.program.compiled import compiled_program, program_changed
from loyalty.segments.filters import segment_members
from loyalty.segments.inflow import holds, usable_in_rules
from tests.factories import MemberFactory, give_points, make_rule, make_tiers
from tests.loyalty.test_segments import CASES, people  # noqa: F401 (a fixture)

pytestmark = pytest.mark.django_db

_keys = iter(range(10**6))


def buy(external_id: str, amount: str = "100.00", **attributes):
    return record_event(
        client=None,
        event=EventInput(
            external_id=external_id,
            action="purchase",
            idempotency_key=f"t-{next(_keys)}",
            attributes={"amount": amount, **attributes},
        ),
    )


def credited_by(result) -> dict[str, int]:
    return {c["rule"]: c["points"] for c in result.outcome["credits"]}


@pytest.fixture
def rules(db):
    make_tiers(("base", 0), ("gold", 500))
    make_rule(
        "purchase", code="base", points_per_unit="1", unit_attribute="amount", growth_per_unit="10"
    )
    make_rule(
        "purchase",
        code="gold-extra",
        points_per_occurrence=50,
        conditions=[("member.tier", "eq", "gold")],
    )
    make_rule(
        "purchase",
        code="app-only",
        points_per_occurrence=5,
        conditions=[("member.attributes.channel", "eq", "app")],
    )
    make_rule(
        "purchase",
        code="second-purchase",
        points_per_occurrence=200,
        conditions=[("member.occurrence", "eq", 2)],
    )


def test_tier_attribute_and_nth_occurrence_conditions_decide_the_credit(rules):
    MemberFactory(external_id="ann", attributes={"channel": "app"})
    first = buy("ann")  # 100 points, growth 1000: Gold after this event, not during it
    assert credited_by(first) == {"base": 100, "app-only": 5}
    assert {s["rule"]: s["reason"] for s in first.outcome["skipped"]} == {
        "gold-extra": "condition_not_met",
        "second-purchase": "condition_not_met",
    }
    second = buy("ann")
    assert credited_by(second) == {
        "base": 100,
        "gold-extra": 50,
        "app-only": 5,
        "second-purchase": 200,
    }
    third = buy("ann")
    assert "second-purchase" not in credited_by(third)
    web = buy("bob", channel="app")  # the event's own attribute is not the member's
    assert "app-only" not in credited_by(web)


def test_a_rule_can_target_a_segment(db):
    make_rule("purchase", code="base", points_per_occurrence=1)
    make_rule(
        "purchase",
        code="vip-bonus",
        points_per_occurrence=30,
        conditions=[("member.segments", "contains", "vip")],
    )
    segment = Segment.objects.create(code="vip", name="VIP")
    SegmentCondition.objects.create(
        segment=segment, field="attribute", attribute="vip", operator="eq", value="true"
    )
    SegmentCondition.objects.create(segment=segment, field="points", operator="gte", value="100")
    program_changed()
    MemberFactory(external_id="vera", attributes={"vip": True})
    MemberFactory(external_id="poor", attributes={"vip": True})
    give_points("vera", 150)
    assert credited_by(buy("vera")) == {"base": 1, "vip-bonus": 30}
    assert credited_by(buy("poor")) == {"base": 1}
    assert set(segment_members(segment).values_list("external_id", flat=True)) == {"vera"}


def facts_from_database(member: Member) -> dict:
    standing = MemberStanding.objects.filter(member=member).select_related("tier").first()
    activity = MemberActivity.objects.filter(member=member).first()
    return {
        "tier": standing.tier.code if standing and standing.tier else None,
        "state": activity.state if activity else None,
        "points": standing.points if standing else None,
        "growth": standing.growth if standing else None,
        "points_earned": standing.points_earned if standing else None,
        "points_spent": standing.points_spent if standing else None,
        "events": standing.events_count if standing else None,
        "joined": local_date(member.joined_at),
        "last_key_day": activity.last_key_day if activity else None,
        "attributes": member.attributes,
    }


@pytest.mark.parametrize(("conditions", "expected"), CASES)
def test_a_segment_read_in_the_flow_selects_the_same_members(people, conditions, expected):  # noqa: F811
    rows = tuple(
        (field, attribute[0] if attribute else "", operator, value)
        for field, operator, value, *attribute in conditions
    )
    if not usable_in_rules(rows):
        pytest.skip("a condition the flow cannot read (badges, quests): database filter only")
    today = timezone.localdate()
    selected = {
        m.external_id
        for m in Member.objects.all()
        if all(holds(row, facts_from_database(m), today) for row in rows)
    }
    assert selected == expected
    assert compiled_program() is not None


def test_a_quest_kept_for_a_segment_counts_and_shows_for_its_members_only(db):
    from loyalty.models import QuestProgress
    from loyalty.segments.filters import member_in_segment
    from loyalty.selectors import member_quests
    from tests.factories import make_quest

    app_users = Segment.objects.create(code="app-users", name="App users")
    app_users.conditions.create(
        field=SegmentCondition.Field.ATTRIBUTE, attribute="channel", operator="eq", value="app"
    )
    make_quest("app-week", "weekly", [("purchase", 2)], reward_points=70, segment=app_users)
    make_quest("everyone-week", "weekly", [("purchase", 1)], reward_points=5)
    ann = MemberFactory(external_id="ann", attributes={"channel": "app"})
    bob = MemberFactory(external_id="bob", attributes={"channel": "web"})

    def shown(member):
        return [
            q["code"]
            for q in member_quests(member, in_segment=lambda s: member_in_segment(s, member))
        ]

    assert shown(ann) == ["app-week", "everyone-week"]
    assert shown(bob) == ["everyone-week"]
    assert [q["code"] for q in member_quests(ann)] == ["everyone-week"]  # no segment asked

    assert buy("bob").outcome["quests_completed"] == ["everyone-week"]
    assert buy("bob").outcome["quests_completed"] == []
    assert not QuestProgress.objects.filter(member=bob, quest__code="app-week").exists()
    assert buy("ann").outcome["quests_completed"] == ["everyone-week"]
    done = buy("ann")
    assert done.outcome["quests_completed"] == ["app-week"]
    assert done.outcome["points"] == 70  # the quest's bonus: no rule credits purchases here

    # Bob joins the segment: from his next event on, the quest counts it.
    Member.objects.filter(pk=bob.pk).update(attributes={"channel": "app"})
    assert buy("bob").outcome["quests_completed"] == []
    progress = QuestProgress.objects.get(member=bob, quest__code="app-week")
    assert list(progress.step_counts.values()) == [1]


def test_a_quest_cannot_be_kept_for_a_segment_the_flow_cannot_read(db):
    from loyalty.admin.gamification import QuestForm

    badge_holders = Segment.objects.create(code="badge-holders", name="Badge holders")
    badge_holders.conditions.create(
        field=SegmentCondition.Field.BADGE, operator="in", value="first-buy"
    )
    form = QuestForm(
        data={
            "code": "q",
            "name": "Q",
            "scope": "weekly",
            "reward_points": 0,
            "reward_growth": 0,
            "window_days": 14,
            "position": 1,
            "segment": badge_holders.pk,
            "translations": "{}",
        }
    )
    assert not form.is_valid()
    assert form.errors.as_data()["segment"][0].code == "segment_not_in_flow"
