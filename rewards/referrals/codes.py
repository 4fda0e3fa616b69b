"""Invite codes: one in use per member, made on first ask, unguessable (ten characters from an
alphabet without look-alikes: about 10^15 codes), regenerable (the old one retires)."""

import secrets
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Member
from core.errors import BusinessRuleViolation
from rewards.referrals.models import ReferralCode
from rewards.referrals.program import ReferralRules, referral_rules

# No 0/O, 1/I/L: a code read aloud or typed from a poster is not mistaken.
ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
LENGTH = 10


def _new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _position in range(LENGTH))


def normalise_code(raw: str) -> str:
    """A code as members type it: spaces and dashes dropped, upper case."""
    return "".join(ch for ch in raw.upper() if ch not in " -")


def invite_code_for(*, member: Member) -> ReferralCode:
    """The member's code in use, made if they have none (concurrent first asks get one code)."""
    found = ReferralCode.objects.filter(member=member, is_active=True).first()
    if found is not None:
        return found
    return _create(member)


def _create(member: Member) -> ReferralCode:
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return ReferralCode.objects.create(member=member, code=_new_code())
        except IntegrityError:
            # Another request made the member's code first (or, once in 10^15, the code exists).
            found = ReferralCode.objects.filter(member=member, is_active=True).first()
            if found is not None:
                return found
    raise RuntimeError("no free invite code found")  # pragma: no cover - practically impossible


# New codes a member may get in a day: enough to replace a leaked one, too few to fill a table.
NEW_CODES_A_DAY = 5


class TooManyNewCodes(BusinessRuleViolation):
    code = "too_many_new_codes"
    message = _("This member got several new codes today; try again tomorrow.")


@transaction.atomic
def invite_code_regenerate(*, member: Member) -> ReferralCode:
    """Retire the member's code (its links stop working) and give them a new one."""
    Member.objects.select_for_update().filter(pk=member.pk).first()
    since = timezone.now() - timedelta(days=1)
    if ReferralCode.objects.filter(member=member, created_at__gte=since).count() > NEW_CODES_A_DAY:
        raise TooManyNewCodes(details={"per_day": NEW_CODES_A_DAY})
    ReferralCode.objects.filter(member=member, is_active=True).update(
        is_active=False, retired_at=timezone.now()
    )
    return _create(member)


def invite_link(code: str, rules: ReferralRules | None = None) -> str | None:
    """The host app's sign-up link carrying the code, if the program sets one (``rules``: the
    settings if the caller has read them)."""
    template = (rules or referral_rules()).link_template
    return template.replace("{code}", code) if template else None
