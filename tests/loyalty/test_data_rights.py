"""Members' data rights: export everything, erase personal data with the books intact."""

import pytest
from django.urls import reverse

from accounts.models import Member
from loyalty.engine.data_rights import member_erase, member_export
from loyalty.ledger.reconciliation import verify_ledger
from loyalty.models import Event, LedgerEntry, MemberErasure, MemberStanding
from tests.factories import MemberFactory, make_rule
from tests.helpers import assert_error

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(earn):
    make_rule("purchase", unit_attribute="amount", points_per_unit=1, growth_per_occurrence=5)
    MemberFactory(external_id="alice", email="alice@example.com", display_name="Alice")
    earn("alice", amount=120, address="1 Main St")
    return Member.objects.get(external_id="alice")


def test_the_export_holds_profile_standing_events_and_ledger(alice):
    data = member_export(member=alice)
    assert data["member"]["email"] == "alice@example.com"
    assert data["standing"]["balances"]["points"]["spendable"] == 120
    assert data["events"][0]["attributes"]["address"] == "1 Main St"
    assert {e["currency"] for e in data["ledger"]} == {"growth", "points"}
    assert data["point_lots"][0]["remaining"] == 120


def test_erasure_removes_personal_data_and_keeps_the_books(alice, admin_user):
    member_erase(member=alice, operator=admin_user)
    alice.refresh_from_db()
    assert alice.external_id == f"erased:{alice.pk}"
    assert (alice.email, alice.display_name, alice.attributes) == ("", "", {})
    event = Event.objects.get()
    assert event.attributes == {}
    assert event.outcome["member"] == alice.external_id
    assert MemberStanding.objects.get().points == 120
    assert LedgerEntry.objects.count() == 2
    assert verify_ledger().ok
    assert MemberErasure.objects.get().operator == admin_user
    # The host app's id is free again: a new member with it starts from nothing.
    MemberFactory(external_id="alice")
    assert member_erase(member=alice).external_id == alice.external_id  # repeating is harmless


def test_the_api_exports_and_erases_with_the_operator_scope(api, alice):
    exported = api.get("/api/v1/members/alice/export")
    assert exported.status_code == 200
    assert exported.json()["member"]["external_id"] == "alice"
    erased = api.post("/api/v1/members/alice/erase")
    assert erased.json() == {"external_id": f"erased:{alice.pk}", "erased": True}
    assert_error(api.get("/api/v1/members/alice/export"), 404, "member_not_found")


def test_the_admin_exports_and_erases_selected_members(admin_client, alice):
    changelist = reverse("admin:loyalty_memberstanding_changelist")
    exported = admin_client.post(
        changelist, {"action": "export_data", "_selected_action": [alice.pk]}
    )
    assert exported["Content-Type"] == "application/json"
    assert b"alice@example.com" in exported.content
    admin_client.post(changelist, {"action": "erase_personal_data", "_selected_action": [alice.pk]})
    alice.refresh_from_db()
    assert alice.email == ""
