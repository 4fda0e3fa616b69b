"""Churn warning from declining behaviour: a member whose weekly key actions fall from 10 to 2
is flagged (once, with a webhook and as a segment condition); one who stays at 2, or slips a
little, is not; one who recovers is cleared."""

from datetime import timedelta

import pytest
from django.utils import timezone

from loyalty.activity.decline import detect_churn_risk
from loyalty.engine.events import EventInput, record_events
from loyalty.models import ChurnRisk, Segment, SegmentCondition, WebhookEndpoint, WebhookEvent
from loyalty.periods import local_date, start_of_day
from loyalty.segments.filters import segment_members
from tests.factories import make_key_action

pytestmark = pytest.mark.django_db


def week_start(weeks_ago: int):
    today = local_date(timezone.now())
    return today - timedelta(days=today.weekday()) - timedelta(weeks=weeks_ago)


def check_ins(external_id: str, per_week: list[int]) -> list[EventInput]:
    """``per_week``: key actions in each of the last weeks, oldest (six weeks ago) first."""
    events = []
    for back, count in zip(range(len(per_week), 0, -1), per_week, strict=True):
        start = start_of_day(week_start(back))
        for n in range(count):
            events.append(
                EventInput(
                    external_id=external_id,
                    action="check_in",
                    idempotency_key=f"{external_id}-{back}-{n}",
                    occurred_at=start + timedelta(hours=8 + n * 14),
                )
            )
    return events


@pytest.fixture
def histories(db):
    make_key_action("check_in", effective_from=timezone.now() - timedelta(days=400))
    record_events(
        client=None,
        events=check_ins("falling", [10, 10, 10, 10, 2, 2])
        + check_ins("steady", [2, 2, 2, 2, 2, 2])
        + check_ins("slipping", [10, 10, 10, 10, 8, 7]),
    )
    WebhookEndpoint.objects.create(
        name="host",
        url="http://127.0.0.1:9/hook",
        secret="s" * 32,
        event_types=["member.churn_risk"],
    )


def test_a_member_whose_key_actions_fall_from_10_to_2_is_flagged_once(histories):
    report = detect_churn_risk()
    assert (report.flagged, report.at_risk) == (1, 1)
    risk = ChurnRisk.objects.get()
    assert risk.member.external_id == "falling"
    assert (risk.indicator, risk.baseline, risk.recent) == ("key_actions_per_week", 10, 2)
    (event,) = WebhookEvent.objects.filter(type="member.churn_risk")
    assert event.data["member"] == "falling" and event.data["baseline"] == "10.00"
    assert detect_churn_risk().flagged == 0  # already flagged: no second webhook
    assert WebhookEvent.objects.filter(type="member.churn_risk").count() == 1

    segment = Segment.objects.create(code="at-risk", name="At risk")
    SegmentCondition.objects.create(segment=segment, field="churn_risk", operator="exists")
    assert list(segment_members(segment).values_list("external_id", flat=True)) == ["falling"]


def test_a_member_who_recovers_is_cleared(histories):
    detect_churn_risk()
    # Nine more check-ins last week; a week on, the recent weeks are 11 and 0 against a
    # baseline of 10, 10, 10, 2: 5.5 a week, above half of 8.
    later = timezone.now() + timedelta(weeks=1)
    record_events(
        client=None,
        events=[
            EventInput(
                external_id="falling",
                action="check_in",
                idempotency_key=f"back-{n}",
                occurred_at=start_of_day(week_start(1)) + timedelta(hours=1 + n * 15),
            )
            for n in range(9)
        ],
    )
    assert detect_churn_risk(now=later).cleared == 1
    assert not ChurnRisk.objects.filter(member__external_id="falling").exists()
