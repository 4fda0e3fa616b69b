"""Referrals under racing transactions: one inviter wins, a referral qualifies and is credited
exactly once, friends are numbered without gaps or repeats."""

import pytest

from core.errors import DomainError
from loyalty.models import Event
from rewards.referrals.attribution import referral_attribute
from rewards.referrals.codes import invite_code_for
from rewards.referrals.models import InviterTally, Referral
from rewards.referrals.qualification import referral_reward
from tests.concurrency import race
from tests.rewards.referral_setup import assert_ledger_ok, member, purchase, referral_program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_racing_codes_for_one_newcomer_one_inviter_wins():
    referral_program()
    codes = [invite_code_for(member=member(f"inviter-{i}")).code for i in range(6)]
    newcomer = member("new")
    results = race(6, lambda i: referral_attribute(invitee=newcomer, code=codes[i]))
    won = [r for r in results if not isinstance(r, Exception)]
    lost = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and not won[0].replayed
    assert all(isinstance(e, DomainError) and e.code == "already_referred" for e in lost), lost
    assert Referral.objects.count() == 1
    assert sum(InviterTally.objects.values_list("joined", flat=True)) == 1


def test_racing_qualifying_orders_and_retries_credit_once():
    referral_program()
    member("alice")
    referral_attribute(invitee=member("bob"), inviter_external_id="alice")
    # Eight orders of the invited member at once, two of them the same order retried.
    keys = ["o-1", "o-1", "o-2", "o-3", "o-4", "o-5", "o-6", "o-7"]
    race(8, lambda i: purchase("bob", "60.00", key=keys[i]))
    referral = Referral.objects.get()
    assert referral.state == Referral.State.QUALIFIED and referral.rewarded_at
    # And the credit task run again, many times at once, records nothing more.
    race(6, lambda i: referral_reward(referral_id=referral.pk))
    assert Event.objects.filter(action_code="referral_qualified").count() == 1
    assert Event.objects.filter(action_code="referred_welcome").count() == 1
    assert Event.objects.filter(action_code="purchase").count() == 7
    assert_ledger_ok()


def test_friends_qualifying_at_once_are_numbered_one_to_n():
    referral_program(monthly_cap=None)
    member("alice")
    for i in range(10):
        referral_attribute(invitee=member(f"f{i}"), inviter_external_id="alice")
    race(10, lambda i: purchase(f"f{i}", "60.00", key=f"order-{i}"))
    numbers = sorted(Referral.objects.values_list("friend_number", flat=True))
    assert numbers == list(range(1, 11))
    tally = InviterTally.objects.get(member__external_id="alice")
    assert (tally.joined, tally.qualified, tally.numbered) == (10, 10, 10)
    # 100 each, and the 500 bonus for the fifth and the tenth.
    from loyalty.models import MemberStanding

    assert MemberStanding.objects.get(member__external_id="alice").points == 10 * 100 + 2 * 500
    assert_ledger_ok()


def test_a_broker_outage_fails_no_order_and_the_sweep_posts_the_credits():
    from datetime import timedelta

    from django.utils import timezone

    from config.celery import app
    from rewards.referrals.qualification import referrals_sweep

    referral_program()
    member("alice")
    referral_attribute(invitee=member("bob"), inviter_external_id="alice")
    keys = ("broker_url", "task_always_eager", "broker_connection_retry")
    previous = {k: app.conf[k] for k in (*keys, "broker_connection_max_retries")}
    app._pool = None
    app.amqp._producer_pool = None
    app.conf.update(
        broker_url="redis://127.0.0.1:1/0", task_always_eager=False, broker_connection_max_retries=0
    )
    try:
        order = purchase("bob", "60.00")  # the broker is down: the order is still recorded
    finally:
        app.conf.update(previous)
        app._pool = None
        app.amqp._producer_pool = None
    referral = Referral.objects.get()
    assert order.event_id and referral.state == Referral.State.QUALIFIED
    assert referral.rewarded_at is None
    Referral.objects.update(qualified_at=timezone.now() - timedelta(minutes=11))
    assert referrals_sweep()["rewarded"] == 1
    assert Referral.objects.get().rewarded_at is not None
    assert Event.objects.filter(action_code="referral_qualified").count() == 1
    assert_ledger_ok()
