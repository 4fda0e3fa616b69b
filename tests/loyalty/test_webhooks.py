"""Webhooks: outbox rows live and die with the change, signed deliveries to a real receiver
on loopback, retries after a receiver error and after a broker outage, and every event type
arriving exactly as documented."""

import json
import threading
from datetime import timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from accounts.models import Member
from loyalty.activity.decline import churn_risk_flag
from loyalty.activity.states import (
    notify_expiring_points,
)
from loyalty.activity.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
    webhooks_dispatch_due,
)
from loyalty.campaigns.runs import campaign_run_serve, campaign_run_start
from loyalty.engine.events import EventInput, record_event
from loyalty.ledger.points import expire_points
from loyalty.models import (
    Campaign,
    Gift,
    PointLot,
    Program,
    Segment,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from loyalty.outbox import EVENT_TYPES, PAYLOAD_FIELDS, webhook_emit
from loyalty.persistence.unit_of_work import UnitOfWork
from tests.factories import (
    ActionFactory,
    make_badge,
    make_key_action,
    make_quest,
    make_reward,
    make_rule,
    make_tiers,
)
from tests.loyalty.conftest import local

DOCS = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"


def emit(**announced):
    """An announcement outside any member's operation (its own unit of work, for the outbox's
    endpoint cache)."""
    work = UnitOfWork({}, {}, timezone.now(), add_scores=lambda deltas, along: None)
    return webhook_emit(work=work, **announced)


class Receiver:
    """A real HTTP receiver on loopback: answers with the queued statuses (then 200) and keeps
    what it got."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self.statuses: list[int] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append({"headers": dict(self.headers), "body": body})
                self.send_response(receiver.statuses.pop(0) if receiver.statuses else 200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.received]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def endpoint(db, receiver):
    return WebhookEndpoint.objects.create(name="host", url=receiver.url)


def test_outbox_rows_are_written_with_the_change_and_rolled_back_with_it(endpoint):
    with transaction.atomic():
        emit(type="points.expired", data={"member": "m", "points": 1, "balance": 0})
        assert WebhookEvent.objects.count() == 1
        transaction.set_rollback(True)
    assert WebhookEvent.objects.count() == 0
    assert WebhookDelivery.objects.count() == 0


def test_a_dry_run_leaves_nothing_in_the_outbox(endpoint):
    make_rule("purchase", growth_per_occurrence=100)
    make_tiers(("member", 0), ("gold", 100))
    record_event(
        client=None,
        event=EventInput(external_id="m", action="purchase", idempotency_key="k"),
        dry_run=True,
    )
    assert WebhookEvent.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_signed_delivery_reaches_the_receiver_and_verifies(endpoint, receiver):
    with transaction.atomic():
        event = emit(type="points.expired", data={"member": "m", "points": 5, "balance": 0})
    (got,) = receiver.received
    headers = {k.lower(): v for k, v in got["headers"].items()}
    assert verify(
        endpoint.secret,
        headers[TIMESTAMP_HEADER.lower()],
        got["body"],
        headers[SIGNATURE_HEADER.lower()],
    )
    assert not verify(
        "whsec_wrong",
        headers[TIMESTAMP_HEADER.lower()],
        got["body"],
        headers[SIGNATURE_HEADER.lower()],
    )
    assert not verify(
        endpoint.secret,
        headers[TIMESTAMP_HEADER.lower()],
        got["body"] + b" ",
        headers[SIGNATURE_HEADER.lower()],
    )
    envelope = json.loads(got["body"])
    assert set(envelope) == {"id", "type", "created_at", "data"}
    assert envelope["id"] == str(event.id)
    assert headers["x-loyalty-event"] == "points.expired"
    assert WebhookDelivery.objects.get().status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_a_receiver_error_is_retried_with_back_off(endpoint, receiver):
    receiver.statuses = [500, 503]
    with transaction.atomic():
        emit(type="points.expired", data={"member": "m", "points": 5, "balance": 0})
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("pending", 1, 500)
    assert delivery.next_attempt_at > timezone.now() + timedelta(seconds=20)
    assert webhooks_dispatch_due() == 0  # not due yet
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    webhooks_dispatch_due()
    WebhookDelivery.objects.update(next_attempt_at=timezone.now())
    webhooks_dispatch_due()
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("succeeded", 3)
    assert list(delivery.log.values_list("status_code", flat=True)) == [500, 503, 200]
    assert len(receiver.received) == 3


@pytest.mark.django_db(transaction=True)
def test_a_broker_outage_loses_nothing(endpoint, receiver, settings):
    from config.celery import app

    previous = {
        k: app.conf[k]
        for k in (
            "broker_url",
            "task_always_eager",
            "broker_connection_retry",
            "broker_connection_max_retries",
        )
    }
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.update(
        broker_url="redis://127.0.0.1:1/0", task_always_eager=False, broker_connection_max_retries=0
    )
    try:
        with transaction.atomic():
            emit(type="points.expired", data={"member": "m", "points": 5, "balance": 0})
    finally:
        app.conf.update(previous)
        app._pool = None
        app.amqp._producer_pool = None
    assert receiver.received == []
    assert WebhookDelivery.objects.get().status == "pending"
    assert webhooks_dispatch_due() == 1
    assert WebhookDelivery.objects.get().status == "succeeded"


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_that_keeps_failing_is_disabled(endpoint, receiver):
    from loyalty.activity import webhooks

    receiver.statuses = [500] * 100
    with transaction.atomic():
        for _ in range(webhooks.DISABLE_AFTER_FAILURES):
            emit(type="points.expired", data={"member": "m", "points": 1, "balance": 0})
    endpoint.refresh_from_db()
    assert endpoint.is_active is False
    assert "failures in a row" in endpoint.disabled_reason


@pytest.mark.django_db(transaction=True)
def test_every_event_type_arrives_exactly_as_documented(endpoint, receiver):
    from rewards.services.redemptions import redeem, redemption_cancel

    Program.objects.update_or_create(
        pk=1, defaults={"points_expiry": "days", "points_expiry_n": 10}
    )
    make_key_action("check_in", effective_from=local(2020, 1, 1))
    Gift.objects.create(kind="welcome", points=10)
    make_rule("purchase", growth_per_occurrence=100, points_per_occurrence=1000)
    make_tiers(("member", 0), ("gold", 100))
    make_badge("first", "action_count", action=ActionFactory(code="purchase"), threshold=1)
    make_quest("buy-once", "onboarding", [("purchase", 1)])
    record_event(
        client=None, event=EventInput(external_id="m", action="purchase", idempotency_key="k1")
    )
    record_event(
        client=None, event=EventInput(external_id="m", action="check_in", idempotency_key="k2")
    )
    member = Member.objects.get(external_id="m")
    make_reward("mug", cost_points=100)
    redemption = redeem(member=member, reward_code="mug", idempotency_key="r").redemption
    redemption_cancel(redemption_id=redemption.pk)
    notify_expiring_points()
    PointLot.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    expire_points()
    everyone = Segment.objects.create(code="everyone", name="Everyone")
    message = Campaign.objects.create(
        code="hello",
        name="Hello",
        segment=everyone,
        kind="message",
        subject="Hi",
        body="{{ name }}, come back",
        starts_at=timezone.now(),
        include_active=True,
    )
    campaign_run_serve(campaign_run_start(message, scheduled_for=timezone.now()))
    churn_risk_flag(member.pk, baseline=Decimal(10), recent=Decimal(2), now=timezone.now())
    _referrals()
    types = {e["type"] for e in receiver.events()}
    missing = set(EVENT_TYPES) - types
    assert missing == set(), f"not sent: {missing}"
    docs = DOCS.read_text()
    for envelope in receiver.events():
        assert set(envelope) == {"id", "type", "created_at", "data"}
        assert set(envelope["data"]) == set(PAYLOAD_FIELDS[envelope["type"]]), envelope
        assert f"`{envelope['type']}`" in docs
        for name in PAYLOAD_FIELDS[envelope["type"]]:
            assert f"`{name}`" in docs


def _referrals() -> None:
    """A referral joined and qualified (both credited), another rejected."""
    from rewards.referrals.attribution import referral_attribute
    from rewards.referrals.review import referrals_reject
    from tests.rewards.referral_setup import member, purchase, referral_program

    referral_program()
    member("inviter")
    referral_attribute(invitee=member("friend-1"), inviter_external_id="inviter")
    purchase("friend-1", "60.00")
    rejected = referral_attribute(invitee=member("friend-2"), inviter_external_id="inviter")
    referrals_reject(referral_ids=[rejected.referral.pk])
