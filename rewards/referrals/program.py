"""The referral settings as the flow reads them: read once per program revision (saving them
renews the revision, so every process reads them again), and the system actions they credit
through."""

import threading
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils.translation import gettext_lazy as _

from loyalty.models import Action
from loyalty.program.compiled import program_changed
from rewards.referrals.models import INVITEE_ACTION, INVITER_ACTION, ReferralProgram

SYSTEM_ACTIONS = {
    INVITER_ACTION: (
        _("Friend qualified"),
        _("A member this one invited did the qualifying action (posted by the referral program)."),
    ),
    INVITEE_ACTION: (
        _("Joined by invitation"),
        _(
            "Invited by another member, this one did the qualifying action (posted by the referral program)."
        ),
    ),
}


@dataclass(frozen=True)
class ReferralRules:
    is_active: bool
    attribution_days: int
    qualifying_action: str | None  # an action code
    amount_attribute: str
    min_amount: Decimal
    qualify_days: int
    signal_attributes: tuple[str, ...]
    burst_limit: int
    burst_hours: int
    link_template: str


def referral_settings() -> ReferralProgram:
    return ReferralProgram.objects.select_related("qualifying_action").get_or_create(pk=1)[0]


_lock = threading.Lock()
_read: tuple[Any, ReferralRules] | None = None


def referral_rules(revision: Any = None) -> ReferralRules:
    """The settings; with the compiled program's ``revision``, read again only when it moved."""
    global _read
    if revision is not None and _read is not None and _read[0] == revision:
        return _read[1]
    found = referral_settings()
    rules = ReferralRules(
        is_active=found.is_active,
        attribution_days=found.attribution_days,
        qualifying_action=found.qualifying_action.code if found.qualifying_action else None,
        amount_attribute=found.amount_attribute,
        min_amount=found.min_amount,
        qualify_days=found.qualify_days,
        signal_attributes=tuple(str(name) for name in found.signal_attributes or ()),
        burst_limit=found.burst_limit,
        burst_hours=found.burst_hours,
        link_template=found.link_template,
    )
    if revision is not None:
        with _lock:
            _read = (revision, rules)
    return rules


def referral_actions_ensure() -> None:
    """The system actions exist (inactive ones stay as the operator left them)."""
    for code, (name, description) in SYSTEM_ACTIONS.items():
        Action.objects.get_or_create(
            code=code, defaults={"name": str(name), "description": str(description)}
        )


@transaction.atomic
def referral_settings_changed() -> None:
    """After the settings are saved: the system actions exist, every process reads the
    settings again."""
    referral_actions_ensure()
    program_changed()
