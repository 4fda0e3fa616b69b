"""Segments: saved member filters, against hand-built members; read through the admin (count,
sample, CSV) and the API (cursor-paginated)."""

import csv
import io
from datetime import datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty.models import (
    BadgeAward,
    MemberActivity,
    MemberStanding,
    Segment,
    SegmentCondition,
)
from loyalty.segments.filters import condition_q, segment_members
from tests.factories import ActionFactory, MemberFactory, make_badge, make_tiers
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    member, gold = make_tiers(("member", 0), ("gold", 1000))
    today = timezone.localdate()
    at = lambda day: timezone.make_aware(datetime(day.year, day.month, day.day, 12))  # noqa: E731
    alice = MemberFactory(
        external_id="alice",
        joined_at=at(today - timedelta(days=300)),
        attributes={"channel": "app", "vip": True, "city": "Shanghai"},
    )
    bob = MemberFactory(
        external_id="bob", joined_at=at(today - timedelta(days=200)), attributes={"channel": "web"}
    )
    carol = MemberFactory(external_id="carol", joined_at=at(today - timedelta(days=100)))
    MemberStanding.objects.create(member=alice, tier=gold, points=500, growth=1500)
    MemberStanding.objects.create(member=bob, tier=member, points=50, growth=20)
    MemberActivity.objects.create(
        member=alice, state="active", since=at(today), last_key_day=today - timedelta(days=3)
    )
    MemberActivity.objects.create(
        member=bob, state="churned", since=at(today), last_key_day=today - timedelta(days=40)
    )
    badge = make_badge("reviewer", "action_count", action=ActionFactory(code="review"), threshold=1)
    BadgeAward.objects.create(member=alice, badge=badge)
    return {"alice": alice, "bob": bob, "carol": carol}


def members_of(*conditions) -> set[str]:
    segment = Segment.objects.create(code=f"s{Segment.objects.count()}", name="test")
    for field, operator, value, *attribute in conditions:
        SegmentCondition.objects.create(
            segment=segment,
            field=field,
            operator=operator,
            value=value,
            attribute=attribute[0] if attribute else "",
        )
    return set(segment_members(segment).values_list("external_id", flat=True))


CASES = [
    ([("tier", "in", "gold")], {"alice"}),
    ([("tier", "not_in", "gold")], {"bob", "carol"}),
    ([("points", "gte", "100")], {"alice"}),
    ([("points", "lte", "100")], {"bob"}),
    ([("growth", "eq", "1500")], {"alice"}),
    ([("state", "in", "churned")], {"bob"}),
    ([("state", "in", "new")], {"carol"}),  # never active: no activity row yet
    ([("days_away", "gte", "30")], {"bob", "carol"}),
    ([("days_away", "lte", "7")], {"alice"}),
    ([("badge", "in", "reviewer")], {"alice"}),
    ([("badge", "not_in", "reviewer")], {"bob", "carol"}),
    ([("attribute", "eq", "app", "channel")], {"alice"}),
    ([("attribute", "in", "app, web", "channel")], {"alice", "bob"}),
    ([("attribute", "ne", "app", "channel")], {"bob", "carol"}),
    ([("attribute", "missing", "", "channel")], {"carol"}),
    ([("attribute", "eq", "true", "vip")], {"alice"}),
    ([("tier", "in", "gold,member"), ("attribute", "eq", "web", "channel")], {"bob"}),
    ([], {"alice", "bob", "carol"}),
]


@pytest.mark.parametrize(("conditions", "expected"), CASES)
def test_segment_conditions_select_the_members_they_describe(people, conditions, expected):
    assert members_of(*conditions) == expected


@pytest.mark.parametrize(
    ("field", "operator", "value", "message"),
    [
        ("points", "gte", "lots", "Give a whole number."),
        ("joined", "gte", "yesterday", "Give a date as YYYY-MM-DD."),
        ("tier", "gte", "gold", "This field takes: is one of, is none of."),
        ("state", "in", "sleepy", "Unknown state: sleepy."),
        ("attribute", "eq", "x", "Name the attribute."),
    ],
)
def test_a_condition_that_cannot_be_read_says_why(field, operator, value, message):
    with pytest.raises(ValueError, match=message.replace(".", r"\.")):
        condition_q(SegmentCondition(field=field, operator=operator, value=value))


def test_the_admin_shows_the_count_a_sample_and_exports_csv(people, admin_client):
    response = admin_client.post(
        reverse("admin:loyalty_segment_add"),
        {
            "code": "big-spenders",
            "name": "Big spenders",
            "description": "",
            "conditions-TOTAL_FORMS": 2,
            "conditions-INITIAL_FORMS": 0,
            "conditions-0-field": "points",
            "conditions-0-operator": "gte",
            "conditions-0-value": "40",
            "conditions-1-field": "attribute",
            "conditions-1-attribute": "channel",
            "conditions-1-operator": "exists",
            "conditions-1-value": "",
        },
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    segment = Segment.objects.get(code="big-spenders")
    page = admin_client.get(
        reverse("admin:loyalty_segment_change", args=[segment.pk])
    ).content.decode()
    assert '<strong id="segment-count">2</strong>' in page
    assert ">alice</a>" in page and ">bob</a>" in page and ">carol</a>" not in page
    exported = admin_client.get(reverse("admin:loyalty_segment_export", args=[segment.pk]))
    rows = list(csv.DictReader(io.StringIO(exported.content.decode())))
    assert [(r["external_id"], r["tier"], r["points"], r["state"]) for r in rows] == [
        ("alice", "gold", "500", "active"),
        ("bob", "member", "50", "churned"),
    ]

    refused = admin_client.post(
        reverse("admin:loyalty_segment_add"),
        {
            "code": "broken",
            "name": "Broken",
            "description": "",
            "conditions-TOTAL_FORMS": 1,
            "conditions-INITIAL_FORMS": 0,
            "conditions-0-field": "points",
            "conditions-0-operator": "gte",
            "conditions-0-value": "lots",
        },
    )
    assert refused.status_code == 200 and "Give a whole number." in refused.content.decode()
    assert not Segment.objects.filter(code="broken").exists()


def test_the_api_lists_segments_and_pages_through_their_members(people, api):
    segment = Segment.objects.create(code="everyone", name="Everyone")
    listed = api.get("/api/v1/segments").json()
    assert [s["code"] for s in listed["results"]] == ["everyone"]

    seen, url = [], "/api/v1/segments/everyone/members?page_size=2"
    while url:
        page = api.get(url).json()
        seen += [(m["external_id"], m["tier"], m["state"]) for m in page["results"]]
        url = page["next"]
    assert seen == [
        ("carol", None, "new"),
        ("bob", "member", "churned"),
        ("alice", "gold", "active"),
    ]
    assert segment_members(segment).count() == 3
    assert_error(api.get("/api/v1/segments/nobody/members"), 404, "segment_not_found")
