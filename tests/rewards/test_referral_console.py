"""Referrals on the console's dashboard: friends joined and qualified from the daily figures,
the referrals waiting for review, the top inviters."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from loyalty.insight.job import refresh
from rewards.referrals.attribution import referral_attribute
from rewards.referrals.models import Referral
from tests.rewards.referral_setup import member, purchase, referral_program

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]


def test_the_dashboard_counts_referrals_and_links_the_review(
    admin_client, django_capture_on_commit_callbacks
):
    assert 'id="referrals"' not in admin_client.get("/admin/").content.decode()
    referral_program()
    member("alice", attributes={"device_id": "d"})
    member("zoe")
    for name, inviter, signals in [
        ("a1", "alice", {}),
        ("a2", "alice", {}),
        ("z1", "zoe", {}),
        ("held", "alice", {"device_id": "d"}),
    ]:
        referral_attribute(invitee=member(name), inviter_external_id=inviter, signals=signals)
    with django_capture_on_commit_callbacks(execute=True):
        for name in ("a1", "a2", "z1"):
            purchase(name, "60.00")
    # The console's figures run to yesterday: the referrals are dated then.
    yesterday = timezone.now() - timedelta(days=1)
    Referral.objects.update(joined_at=yesterday)
    Referral.objects.exclude(qualified_at=None).update(qualified_at=yesterday)
    refresh(now=datetime.now().astimezone())
    day = timezone.localdate(yesterday).isoformat()
    page = admin_client.get(f"/admin/?range=custom&first={day}&last={day}").content.decode()
    section = page[page.index('id="referrals"') :]
    assert "Friends joined</th><td><a" in section and ">4</a>" in section
    assert "Friends qualified</th><td>3</td>" in section
    assert "1 referral waits for review" in section and "state__exact=held" in section
    assert section.index("alice") < section.index("zoe")
    assert "2 friends qualified" in section
