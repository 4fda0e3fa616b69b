"""The demo's referrals: the settings, and friends of the first demo member who joined with
their code: some qualified by a first purchase, one waiting, one held (a shared device)."""

from pathlib import Path

import yaml
from django.db import transaction

from accounts.models import Member
from loyalty.engine.events import record_events
from loyalty.engine.inputs import EventInput
from loyalty.models import Funnel
from rewards.referrals.attribution import referral_attribute
from rewards.referrals.codes import invite_code_for
from rewards.referrals.models import Referral
from rewards.referrals.program_file import referrals_load
from rewards.referrals.qualification import referral_reward

DEMO_REFERRALS = Path(__file__).resolve().parents[1] / "fixtures" / "demo_referrals.yaml"
INVITER = "demo-0001"
FRIENDS = [
    # (name, first purchase, device)
    ("Lin", "88.00", "dev-lin"),
    ("Mei", "120.00", "dev-mei"),
    ("Jun", "64.50", "dev-jun"),
    ("Ava", None, "dev-ava"),
    ("Sam", "59.00", "dev-shared"),
]


def load_demo_referrals() -> str:
    with transaction.atomic():
        settings = referrals_load(yaml.safe_load(DEMO_REFERRALS.read_text()), False)
        Funnel.objects.get_or_create(
            name="Invite a friend",
            defaults={"steps": ["check_in", "purchase", "referral_qualified"]},
        )
    inviter = Member.objects.filter(external_id=INVITER).first()
    if inviter is None or Referral.objects.filter(inviter=inviter).exists():
        return f"referrals {settings}"
    inviter.attributes = {**inviter.attributes, "device_id": "dev-shared"}
    inviter.save(update_fields=["attributes"])
    code = invite_code_for(member=inviter).code
    orders = []
    for n, (name, amount, device) in enumerate(FRIENDS, start=1):
        friend, _ = Member.objects.get_or_create(
            external_id=f"demo-friend-{n}", defaults={"display_name": name}
        )
        referral_attribute(invitee=friend, code=code, signals={"device_id": device})
        if amount:
            orders.append(
                EventInput(
                    external_id=friend.external_id,
                    action="purchase",
                    idempotency_key=f"demo-friend-{n}-order",
                    attributes={"amount": amount},
                )
            )
    record_events(client=None, events=orders)
    for referral in Referral.objects.filter(inviter=inviter, state=Referral.State.QUALIFIED):
        referral_reward(referral_id=referral.pk)  # inline as well when a worker would
    return f"referrals {settings}, {len(FRIENDS)} friends of {INVITER}"
