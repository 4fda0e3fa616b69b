"""Referrals on PostgreSQL: attribution rules, qualification, both credits through the rules
with their caps, refunds, review, the leaderboard metric and the webhooks."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import Member
from core.errors import DomainError
from loyalty.gamification.leaderboards import leaderboard_view
from loyalty.models import Event, LedgerEntry, MemberStanding, WebhookEndpoint, WebhookEvent
from loyalty.scores.counting import board_period_start
from rewards.referrals.attribution import referral_attribute
from rewards.referrals.codes import invite_code_for, invite_code_regenerate, invite_link
from rewards.referrals.models import InviterTally, Referral, ReferralProgram
from rewards.referrals.qualification import referrals_sweep
from rewards.referrals.review import referrals_approve, referrals_reject
from tests.factories import ActionFactory, make_leaderboard
from tests.rewards.referral_setup import (
    assert_ledger_ok,
    member,
    purchase,
    referral_program,
    refund,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def points(external_id: str) -> int:
    """The member's spendable points (0 before their first credit)."""
    standing = MemberStanding.objects.filter(member__external_id=external_id).first()
    return standing.points if standing else 0


def refused(code: str, call) -> DomainError:
    with pytest.raises(DomainError) as caught:
        call()
    assert caught.value.code == code, caught.value.code
    return caught.value


@pytest.fixture
def program(db):
    return referral_program()


@pytest.fixture
def run_tasks(django_capture_on_commit_callbacks):
    """Run what would be queued after commit (the credits, the take-backs) at once."""

    def run(call):
        with django_capture_on_commit_callbacks(execute=True):
            return call()

    return run


# --- Codes ------------------------------------------------------------------------------------


def test_a_code_is_stable_unguessable_and_regenerable(program):
    alice = member("alice")
    code = invite_code_for(member=alice)
    assert invite_code_for(member=alice) == code
    assert len(code.code) == 10 and code.code.isalnum()
    assert invite_code_for(member=member("bob")).code != code.code
    new = invite_code_regenerate(member=alice)
    assert new.code != code.code and invite_code_for(member=alice) == new
    refused(
        "referral_code_retired",
        lambda: referral_attribute(invitee=member("carol"), code=code.code),
    )
    assert (
        referral_attribute(invitee=member("dave"), code=new.code.lower()).referral.inviter == alice
    )


def test_the_invite_link_carries_the_code(program):
    assert invite_link("ABC") is None
    ReferralProgram.objects.filter(pk=1).update(
        link_template="https://shop.example/join?ref={code}"
    )
    assert invite_link("ABC") == "https://shop.example/join?ref=ABC"


# --- Attribution ------------------------------------------------------------------------------


def test_first_valid_code_wins_and_a_retry_answers_the_same(program):
    alice, bob, newcomer = member("alice"), member("bob"), member("new")
    refused(
        "referral_code_unknown", lambda: referral_attribute(invitee=newcomer, code="NOPE234567")
    )
    first = referral_attribute(invitee=newcomer, code=invite_code_for(member=alice).code)
    assert not first.replayed and first.referral.state == Referral.State.JOINED
    again = referral_attribute(invitee=newcomer, inviter_external_id="alice")
    assert again.replayed and again.referral.pk == first.referral.pk
    refused(
        "already_referred",
        lambda: referral_attribute(invitee=newcomer, code=invite_code_for(member=bob).code),
    )
    assert Referral.objects.get(invitee=newcomer).inviter == alice
    assert InviterTally.objects.get(member=alice).joined == 1


def test_self_referral_and_loops_are_refused(program):
    alice, bob, carol = member("alice"), member("bob"), member("carol")
    refused("self_referral", lambda: referral_attribute(invitee=alice, inviter_external_id="alice"))
    referral_attribute(invitee=bob, inviter_external_id="alice")
    referral_attribute(invitee=carol, inviter_external_id="bob")
    # Alice may not be invited by Bob (her invitee) nor by Carol (her invitee's invitee).
    refused("referral_loop", lambda: referral_attribute(invitee=alice, inviter_external_id="bob"))
    refused("referral_loop", lambda: referral_attribute(invitee=alice, inviter_external_id="carol"))
    assert not Referral.objects.filter(invitee=alice).exists()


def test_the_window_after_joining_closes(program):
    member("alice")
    late = member("late", joined_at=timezone.now() - timedelta(days=8))
    refused(
        "referral_window_closed",
        lambda: referral_attribute(invitee=late, inviter_external_id="alice"),
    )
    just = member("just", joined_at=timezone.now() - timedelta(days=6, hours=23))
    assert referral_attribute(invitee=just, inviter_external_id="alice").referral.pk


def test_referrals_off_refuses(program):
    ReferralProgram.objects.filter(pk=1).update(is_active=False)
    member("alice")
    refused(
        "referrals_off",
        lambda: referral_attribute(invitee=member("b"), inviter_external_id="alice"),
    )


def test_a_shared_signal_holds_the_referral(program):
    member("alice", attributes={"device_id": "dev-1"})
    held = referral_attribute(
        invitee=member("bob"), inviter_external_id="alice", signals={"device_id": "dev-1"}
    ).referral
    assert held.state == Referral.State.HELD
    assert held.hold_reason == Referral.HoldReason.SHARED_SIGNAL
    assert held.hold_details == {"signals": ["device_id"]}
    # Two invitees on one phone: the second is held too; a different phone is not.
    referral_attribute(
        invitee=member("c1"), inviter_external_id="alice", signals={"phone_hash": "p9"}
    )
    second = referral_attribute(
        invitee=member("c2"), inviter_external_id="alice", signals={"phone_hash": "p9"}
    )
    assert second.referral.hold_reason == Referral.HoldReason.SHARED_SIGNAL
    other = referral_attribute(
        invitee=member("c3"), inviter_external_id="alice", signals={"phone_hash": "p8"}
    )
    assert other.referral.state == Referral.State.JOINED
    # The values themselves are not kept.
    assert not Referral.objects.filter(hold_details__icontains="dev-1").exists()
    refused(
        "invalid_signals",
        lambda: referral_attribute(
            invitee=member("d"), inviter_external_id="alice", signals={"device_id": ["x"]}
        ),
    )


def test_a_burst_from_one_inviter_is_held(program):
    ReferralProgram.objects.filter(pk=1).update(burst_limit=3)
    member("alice")
    states = [
        referral_attribute(
            invitee=member(f"f{i}"), inviter_external_id="alice"
        ).referral.hold_reason
        for i in range(5)
    ]
    assert states == ["", "", "", "burst", "burst"]


# --- Qualification and credits ----------------------------------------------------------------


def test_a_qualifying_purchase_credits_both_through_the_rules(program, run_tasks):
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example/x", event_types=[])
    member("alice")
    referral_attribute(invitee=member("bob"), inviter_external_id="alice")
    run_tasks(lambda: purchase("bob", "20.00"))  # below the minimum
    assert Referral.objects.get().state == Referral.State.JOINED
    result = run_tasks(lambda: purchase("bob", "80.00"))
    referral = Referral.objects.get()
    assert referral.state == Referral.State.QUALIFIED
    assert referral.qualifying_event_id == result.event_id
    assert referral.friend_number == 1 and referral.rewarded_at
    assert points("alice") == 100  # friend-qualified
    assert points("bob") == 20 + 80 + 50  # purchases, and the welcome
    assert referral.inviter_event.action_code == "referral_qualified"
    assert referral.invitee_event.outcome["credits"][0]["rule"] == "welcome-friend"
    # A later purchase does not qualify it again.
    run_tasks(lambda: purchase("bob", "90.00"))
    assert Event.objects.filter(action_code="referral_qualified").count() == 1
    types = list(WebhookEvent.objects.order_by("created_at").values_list("type", flat=True))
    assert types == ["referral.joined", "referral.qualified"]
    qualified = WebhookEvent.objects.get(type="referral.qualified").data
    assert qualified["inviter_credited"] == {"growth": 0, "points": 100}
    assert qualified["member_credited"] == {"growth": 0, "points": 50}
    assert endpoint.pk
    assert_ledger_ok()


def test_outside_the_window_it_does_not_qualify_and_expires(program, run_tasks):
    member("alice")
    bob = member("bob", joined_at=timezone.now() - timedelta(days=1))
    referral_attribute(invitee=bob, inviter_external_id="alice")
    run_tasks(lambda: purchase("bob", "80.00", at=timezone.now() + timedelta(days=30)))
    assert Referral.objects.get().state == Referral.State.JOINED
    Referral.objects.update(qualify_by=timezone.now() - timedelta(seconds=1))
    assert referrals_sweep()["expired"] == 1
    assert Referral.objects.get().state == Referral.State.EXPIRED
    assert points("alice") == 0
    assert not Event.objects.filter(action_code="referral_qualified").exists()


def test_the_monthly_cap_and_every_fifth_friend_bonus_are_rules(program, run_tasks):
    member("alice")
    for i in range(5):
        referral_attribute(invitee=member(f"f{i}"), inviter_external_id="alice")
        run_tasks(lambda i=i: purchase(f"f{i}", "60.00"))
    numbers = sorted(Referral.objects.values_list("friend_number", flat=True))
    assert numbers == [1, 2, 3, 4, 5]
    # Two friends a month earn the 100; the fifth earns the 500 bonus beside.
    assert points("alice") == 2 * 100 + 500
    assert InviterTally.objects.get(member__external_id="alice").qualified == 5
    assert_ledger_ok()


def test_friends_qualified_leaderboard(program, run_tasks):
    board = make_leaderboard("friends", "action_count", "all_time", action="referral_qualified")

    member("alice")
    member("zoe")
    for i in range(2):
        referral_attribute(invitee=member(f"a{i}"), inviter_external_id="alice")
        run_tasks(lambda i=i: purchase(f"a{i}", "60.00"))
    referral_attribute(invitee=member("z0"), inviter_external_id="zoe")
    run_tasks(lambda: purchase("z0", "60.00"))
    view = leaderboard_view(board=board, period=board_period_start(board.period, timezone.now()))
    names = dict(Member.objects.values_list("pk", "external_id"))
    assert [(names[row.member_id], row.score) for row in view["top"]] == [("alice", 2), ("zoe", 1)]


# --- Refunds and review -----------------------------------------------------------------------


def test_a_refund_of_the_qualifying_order_takes_both_credits_back(program, run_tasks):
    member("alice")
    referral_attribute(invitee=member("bob"), inviter_external_id="alice")
    order = run_tasks(lambda: purchase("bob", "80.00"))
    assert points("alice") == 100
    # A partial refund that leaves 60.00 still qualifies.
    run_tasks(lambda: refund(order.event_id, "20.00", key="r1"))
    assert Referral.objects.get().state == Referral.State.QUALIFIED and points("alice") == 100
    # Below the minimum: held, both credits reversed through the reversal path.
    run_tasks(lambda: refund(order.event_id, "20.00", key="r2"))
    referral = Referral.objects.get()
    assert referral.state == Referral.State.HELD
    assert referral.hold_reason == Referral.HoldReason.REFUNDED
    assert points("alice") == 0
    assert points("bob") == 40  # what is left of the order; the welcome reversed
    assert LedgerEntry.objects.filter(kind="reverse", event=referral.inviter_event).exists()
    assert InviterTally.objects.get(member__external_id="alice").qualified == 0
    assert_ledger_ok()
    # Approving it lets a new qualifying order count again.
    referrals_approve(referral_ids=[referral.pk])
    assert Referral.objects.get().state == Referral.State.JOINED
    run_tasks(lambda: purchase("bob", "70.00"))
    referral = Referral.objects.get()
    assert referral.state == Referral.State.QUALIFIED and points("alice") == 100
    assert referral.friend_number == 2
    assert_ledger_ok()


def test_review_approves_and_rejects_in_bulk(program, run_tasks):
    member("alice", attributes={"device_id": "d"})
    ids = []
    for name in ("h1", "h2", "h3"):
        ids.append(
            referral_attribute(
                invitee=member(name), inviter_external_id="alice", signals={"device_id": "d"}
            ).referral.pk
        )
    run_tasks(lambda: purchase("h1", "60.00"))
    run_tasks(lambda: purchase("h2", "60.00"))
    # Held: the purchases credit nothing for the referral yet.
    assert points("alice") == 0
    assert not Event.objects.filter(action_code="referral_qualified").exists()
    report = run_tasks(lambda: referrals_approve(referral_ids=ids[:1]))
    assert report.done == ids[:1]
    assert (
        points("alice") == 100 and Referral.objects.get(pk=ids[0]).state == Referral.State.QUALIFIED
    )
    report = run_tasks(lambda: referrals_reject(referral_ids=ids))
    # The rewarded one is rejected too, and its credits taken back.
    assert sorted(report.done) == sorted(ids)
    assert set(Referral.objects.values_list("state", flat=True)) == {Referral.State.REJECTED}
    assert points("alice") == 0
    assert WebhookEvent.objects.filter(type="referral.rejected").count() == 0  # no endpoint
    assert referrals_approve(referral_ids=ids).skipped == sorted(ids)
    assert_ledger_ok()


def test_rejected_webhook_names_the_reason(program, run_tasks):
    WebhookEndpoint.objects.create(url="https://hooks.example/x", event_types=["referral.rejected"])
    member("alice")
    pk = referral_attribute(invitee=member("bob"), inviter_external_id="alice").referral.pk
    run_tasks(lambda: referrals_reject(referral_ids=[pk]))
    (event,) = WebhookEvent.objects.filter(type="referral.rejected")
    assert event.data == {
        "member": "bob",
        "inviter": "alice",
        "referral_id": pk,
        "reason": "review",
    }
    assert Member.objects.count() == 2


def test_export_and_erasure_cover_referrals(program, run_tasks):
    from loyalty.engine.data_rights import member_erase, member_export
    from rewards.referrals.models import ReferralCode, ReferralSignal

    alice = member("alice")
    invite_code_for(member=alice)
    bob = member("bob")
    referral_attribute(invitee=bob, inviter_external_id="alice", signals={"device_id": "x"})
    run_tasks(lambda: purchase("bob", "60.00"))
    exported = member_export(member=alice)["referrals"]
    assert exported["invited"][0]["invitee__external_id"] == "bob"
    assert member_export(member=bob)["referrals"]["invited_by"] == "alice"
    member_erase(member=bob)
    assert not ReferralSignal.objects.filter(member=bob).exists()
    # The inviter's credit no longer names the erased friend.
    assert Referral.objects.get().inviter_event.attributes == {}
    member_erase(member=alice)
    assert not ReferralCode.objects.filter(member=alice, is_active=True).exists()
    assert_ledger_ok()


def test_the_program_file_section_refuses_what_the_admin_refuses(db):
    from core.errors import InvalidInput
    from rewards.referrals.program_file import referrals_load

    with pytest.raises(InvalidInput) as refused:
        referrals_load(
            {"is_active": True, "link_template": "https://x.example/", "burst_limit": 0}, False
        )
    details = " ".join(refused.value.details)
    assert "referrals.burst_limit" in details
    with pytest.raises(InvalidInput) as refused:
        referrals_load({"is_active": True, "link_template": "https://x.example/"}, False)
    details = " ".join(refused.value.details)
    assert "referrals.link_template" in details and "referrals.qualifying_action" in details
    assert not ReferralProgram.objects.filter(is_active=True).exists()
    ActionFactory(code="purchase")
    assert referrals_load({"qualifying_action": "purchase", "is_active": True}, False) == "on"
    assert ReferralProgram.objects.get().qualifying_action.code == "purchase"


def test_a_rejection_while_the_credits_are_posted_takes_them_back(program, run_tasks, monkeypatch):
    from rewards.referrals import qualification

    member("alice")
    pk = referral_attribute(invitee=member("bob"), inviter_external_id="alice").referral.pk
    real = qualification.record_events

    def reject_meanwhile(**kwargs):
        # An operator rejects it after it was numbered, before its credits are posted.
        referrals_reject(referral_ids=[pk])
        return real(**kwargs)

    monkeypatch.setattr(qualification, "record_events", reject_meanwhile)
    run_tasks(lambda: purchase("bob", "60.00"))
    referral = Referral.objects.get()
    assert referral.state == Referral.State.REJECTED and referral.rewarded_at is None
    assert Event.objects.filter(action_code="referral_qualified").count() == 1
    assert points("alice") == 0 and points("bob") == 60
    assert InviterTally.objects.get(member__external_id="alice").qualified == 0
    assert_ledger_ok()


def test_the_sweep_takes_back_credits_a_lost_task_left(program, run_tasks):
    member("alice")
    referral_attribute(invitee=member("bob"), inviter_external_id="alice")
    order = run_tasks(lambda: purchase("bob", "80.00"))
    assert points("alice") == 100
    refund(order.event_id)  # its take-back task is lost (not run after commit)
    assert points("alice") == 100 and Referral.objects.get().state == Referral.State.HELD
    assert referrals_sweep()["taken_back"] == 1
    assert points("alice") == 0 and points("bob") == 0
    assert InviterTally.objects.get(member__external_id="alice").qualified == 0
    assert referrals_sweep()["taken_back"] == 0
    assert_ledger_ok()


def test_the_flow_reads_referrals_only_for_members_within_the_window(program):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    member("veteran", joined_at=timezone.now() - timedelta(days=400))
    member("newcomer")

    def referral_reads(external_id: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            purchase(external_id, "60.00")
        # The referrals table itself (not the settings, read once per program revision).
        return sum(
            bool(re.search(r"rewards_referral\b", query["sql"]))
            for query in queries.captured_queries
        )

    assert referral_reads("veteran") == 0
    assert referral_reads("newcomer") == 1


def test_a_renamed_system_action_is_made_again_for_the_credits(program, run_tasks):
    from loyalty.models import Action
    from loyalty.program.compiled import program_changed

    # An operator renamed it (its rule went with it).
    Action.objects.filter(code="referred_welcome").update(code="friend-welcome")
    program_changed()
    member("alice")
    referral_attribute(invitee=member("bob"), inviter_external_id="alice")
    run_tasks(lambda: purchase("bob", "60.00"))
    referral = Referral.objects.get()
    # Made again, and known to the flow: the credit is recorded against it, not refused as an
    # unknown action.
    assert referral.invitee_event.action.code == "referred_welcome"
    assert referral.invitee_event.reason != "unknown_action"
    assert points("alice") == 100
