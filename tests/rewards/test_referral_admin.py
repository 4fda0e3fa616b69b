"""The referral admin: settings, bulk review, a member's tree, the top inviters."""

import pytest
from django.urls import reverse

from loyalty.models import Action
from rewards.referrals.attribution import referral_attribute
from rewards.referrals.models import Referral, ReferralProgram
from tests.rewards.referral_setup import member, referral_program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_settings_switch_on_only_with_a_qualifying_action(admin_client):
    url = reverse("admin:rewards_referralprogram_add")
    form = {
        "is_active": "on",
        "attribution_days": 7,
        "amount_attribute": "amount",
        "min_amount": "10",
        "qualify_days": 30,
        "signal_attributes": '["device_id"]',
        "burst_limit": 10,
        "burst_hours": 24,
        "link_template": "https://shop.example/join",
    }
    page = admin_client.post(url, form)
    assert page.status_code == 200
    assert "qualifying action" in page.content.decode()
    assert "{code}" in page.content.decode()
    purchase = Action.objects.create(code="purchase", name="Purchase")
    form.update(qualifying_action=purchase.pk, link_template="https://shop.example/j?r={code}")
    assert admin_client.post(url, form).status_code == 302
    assert ReferralProgram.objects.get().is_active
    # The system actions exist for the operator to give them rules.
    assert set(Action.objects.values_list("code", flat=True)) >= {
        "referral_qualified",
        "referred_welcome",
    }


def test_bulk_review_tree_and_top_inviters(admin_client, django_capture_on_commit_callbacks):
    referral_program()
    alice = member("alice", attributes={"device_id": "d"})
    ids = [
        referral_attribute(
            invitee=member(f"h{i}"), inviter_external_id="alice", signals={"device_id": "d"}
        ).referral.pk
        for i in range(3)
    ]
    referral_attribute(invitee=member("grandchild"), inviter_external_id="h0")
    changelist = reverse("admin:rewards_referral_changelist")
    held = admin_client.get(changelist, {"state": "held"})
    assert held.status_code == 200 and "h2" in held.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        page = admin_client.post(
            changelist, {"action": "approve", "_selected_action": ids[:2]}, follow=True
        )
    assert "2 referrals approved" in page.content.decode()
    admin_client.post(changelist, {"action": "reject", "_selected_action": ids[1:]})
    states = dict(Referral.objects.filter(pk__in=ids).values_list("pk", "state"))
    assert states == {ids[0]: "joined", ids[1]: "rejected", ids[2]: "rejected"}
    assert Referral.objects.get(pk=ids[0]).reviewed_by.username == "admin"

    tree = admin_client.get(reverse("admin:rewards_referral_tree", args=[alice.pk]))
    body = tree.content.decode()
    assert tree.status_code == 200
    assert body.index("h0") < body.index("grandchild")
    top = admin_client.get(reverse("admin:rewards_invitertally_changelist")).content.decode()
    assert top.index("alice") < top.index("h0")  # three joined against one
