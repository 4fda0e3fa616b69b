"""A referral program for the tests: purchases qualify from 50.00 within 30 days; the inviter
gets 100 points (at most two friends a month) and a 500-point bonus every fifth friend; the
invited member gets 50 points."""

from datetime import timedelta
from decimal import Decimal

from django.utils import timezone

from loyalty.engine.events import record_event
from loyalty.engine.inputs import EventInput
from loyalty.engine.reversals import event_reverse
from loyalty.ledger.reconciliation import verify_ledger
from rewards.referrals.models import ReferralProgram
from rewards.referrals.program import referral_settings_changed
from tests.factories import ActionFactory, MemberFactory, make_rule


def referral_program(*, monthly_cap: int | None = 2, **fields) -> ReferralProgram:
    fields = {
        "is_active": True,
        "qualifying_action": ActionFactory(code="purchase"),
        "min_amount": Decimal("50.00"),
        "qualify_days": 30,
        "attribution_days": 7,
        "signal_attributes": ["device_id", "phone_hash"],
        "burst_limit": 10,
        "burst_hours": 24,
        **fields,
    }
    settings, _ = ReferralProgram.objects.update_or_create(pk=1, defaults=fields)
    referral_settings_changed()
    make_rule("purchase", points_per_unit=Decimal("1"), unit_attribute="amount")
    make_rule(
        "referral_qualified",
        code="friend-qualified",
        points_per_occurrence=100,
        caps=[("month", "occurrences", monthly_cap)] if monthly_cap else (),
    )
    make_rule(
        "referral_qualified",
        code="every-fifth-friend",
        points_per_occurrence=500,
        conditions=[("friend_number", "multiple_of", 5)],
    )
    make_rule("referred_welcome", code="welcome-friend", points_per_occurrence=50)
    return settings


def member(external_id: str, **fields):
    fields.setdefault("joined_at", timezone.now() - timedelta(hours=1))
    return MemberFactory(external_id=external_id, **fields)


_keys = iter(range(10**9))


def purchase(external_id: str, amount: str, *, key: str | None = None, at=None):
    return record_event(
        client=None,
        event=EventInput(
            external_id=external_id,
            action="purchase",
            idempotency_key=key or f"order-{next(_keys)}",
            occurred_at=at,
            attributes={"amount": amount},
        ),
    )


def refund(event_id: int, amount: str | None = None, *, key: str = "refund-1"):
    return event_reverse(
        client=None,
        event_id=event_id,
        idempotency_key=key,
        amount=Decimal(amount) if amount else None,
    )


def assert_ledger_ok() -> None:
    report = verify_ledger()
    assert report.ok, report.mismatches
