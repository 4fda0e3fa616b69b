"""Attribution: the host app names who invited a member when the member registers.

One inviter per member, the first valid code wins; only within the program's window after
joining; never oneself, never a loop (inviting one's own inviter, or theirs); a referral between
members who share an identity signal, or one of a burst from one inviter, is held for review.
"""

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Member
from accounts.services import member_get
from core.errors import BusinessRuleViolation, Conflict, InvalidInput, NotFound
from loyalty.models import Event
from loyalty.outbox import webhook_emit
from rewards.referrals.codes import normalise_code
from rewards.referrals.models import InviterTally, Referral, ReferralCode, ReferralSignal
from rewards.referrals.program import ReferralRules, referral_rules

# How far up the inviters' chain a loop is looked for (chains are short; this bounds the walk).
MAX_CHAIN = 64


class ReferralsOff(BusinessRuleViolation):
    code = "referrals_off"
    message = _("The program does not take referrals now.")


class ReferralCodeUnknown(NotFound):
    code = "referral_code_unknown"
    message = _("No member has this invite code.")


class ReferralCodeRetired(BusinessRuleViolation):
    code = "referral_code_retired"
    message = _("This invite code was replaced by a newer one.")


class SelfReferral(BusinessRuleViolation):
    code = "self_referral"
    message = _("A member cannot invite themselves.")


class ReferralLoop(BusinessRuleViolation):
    code = "referral_loop"
    message = _("This member invited the inviter (or one of the inviter's inviters).")


class ReferralWindowClosed(BusinessRuleViolation):
    code = "referral_window_closed"
    message = _("The member joined too long ago to name who invited them.")


class AlreadyReferred(Conflict):
    code = "already_referred"
    message = _("Another member already invited this member.")


class SignalsInvalid(InvalidInput):
    code = "invalid_signals"
    message = _("Identity signals are an object of short text values.")


@dataclass(frozen=True)
class AttributionResult:
    referral: Referral
    replayed: bool


def signal_digest(name: str, value: Any) -> str:
    """A signal's keyed digest: equal values match, the value itself is not kept."""
    key = settings.SECRET_KEY.encode()
    return hmac.new(key, f"{name}\x00{value}".encode(), hashlib.sha256).hexdigest()


def _digests(
    rules: ReferralRules, member: Member, reported: dict[str, Any]
) -> set[tuple[str, str]]:
    """The configured signals of a member: reported now, or among their attributes."""
    found = set()
    attributes = member.attributes if isinstance(member.attributes, dict) else {}
    for name in rules.signal_attributes:
        for value in (reported.get(name), attributes.get(name)):
            if value not in (None, "") and isinstance(value, str | int):
                found.add((name, signal_digest(name, value)))
    return found


def _check_signals(signals: Any) -> dict[str, Any]:
    if signals is None:
        return {}
    if (
        not isinstance(signals, dict)
        or len(signals) > 20
        or any(
            not isinstance(k, str)
            or len(k) > 64
            or not isinstance(v, str | int)
            or isinstance(v, bool)
            or len(str(v)) > 256
            for k, v in signals.items()
        )
    ):
        raise SignalsInvalid()
    return signals


def referral_attribute(
    *,
    invitee: Member,
    code: str | None = None,
    inviter_external_id: str | None = None,
    signals: dict[str, Any] | None = None,
) -> AttributionResult:
    """Attribute ``invitee`` to the member whose code (or host id) is given. A retry naming the
    same inviter answers the stored referral; another inviter after the first is refused."""
    rules = referral_rules()
    if not rules.is_active:
        raise ReferralsOff()
    reported = _check_signals(signals)
    used = ""
    if code:
        used = normalise_code(code)
        found = ReferralCode.objects.filter(code=used).select_related("member").first()
        if found is None:
            raise ReferralCodeUnknown(details={"code": used})
        if not found.is_active:
            raise ReferralCodeRetired(details={"code": used})
        inviter = found.member
    elif inviter_external_id:
        inviter = member_get(external_id=inviter_external_id)
    else:
        raise InvalidInput(
            _("Give the invite code or the inviter."), code="referral_inviter_missing"
        )
    if inviter.pk == invitee.pk:
        raise SelfReferral()
    existing = Referral.objects.filter(invitee=invitee).first()
    if existing is not None:
        return _repeat(existing, inviter)
    now = timezone.now()
    if now - invitee.joined_at > timedelta(days=rules.attribution_days):
        raise ReferralWindowClosed(
            details={"joined_at": invitee.joined_at.isoformat(), "days": rules.attribution_days}
        )
    if _in_chain(inviter.pk, invitee.pk):
        raise ReferralLoop()
    try:
        with transaction.atomic():
            referral = _create(rules, inviter, invitee, used, reported, now)
    except IntegrityError:
        # The same member attributed at the same time by another request: the first one wins.
        return _repeat(Referral.objects.get(invitee=invitee), inviter)
    return AttributionResult(referral=referral, replayed=False)


def _repeat(existing: Referral, inviter: Member) -> AttributionResult:
    if existing.inviter_id != inviter.pk:
        raise AlreadyReferred(details={"inviter": existing.inviter.external_id})
    return AttributionResult(referral=existing, replayed=True)


def _in_chain(inviter_id: int, invitee_id: int) -> bool:
    """Whether the invitee is the inviter or one of the inviter's inviters."""
    seen = {inviter_id}
    current = inviter_id
    for _step in range(MAX_CHAIN):
        above = Referral.objects.filter(invitee_id=current).values_list("inviter_id", flat=True)
        current = next(iter(above), None)
        if current is None or current in seen:
            return current == invitee_id
        if current == invitee_id:
            return True
        seen.add(current)
    return False


def _create(
    rules: ReferralRules,
    inviter: Member,
    invitee: Member,
    code: str,
    reported: dict[str, Any],
    now,
) -> Referral:
    # The inviter's tally row serialises their attributions: the burst count is exact.
    tally = InviterTally.locked(inviter)
    invitee_signals = _digests(rules, invitee, reported)
    hold_reason, details = _hold(rules, inviter, invitee, invitee_signals, now)
    referral = Referral.objects.create(
        inviter=inviter,
        invitee=invitee,
        code=code,
        state=Referral.State.HELD if hold_reason else Referral.State.JOINED,
        hold_reason=hold_reason,
        hold_details=details,
        joined_at=now,
        qualify_by=invitee.joined_at + timedelta(days=rules.qualify_days),
    )
    ReferralSignal.objects.bulk_create(
        [ReferralSignal(member=invitee, name=n, digest=d) for n, d in sorted(invitee_signals)],
        ignore_conflicts=True,
    )
    tally.joined += 1
    tally.save(update_fields=["joined"])
    webhook_emit(
        work=None,
        type="referral.joined",
        data={
            "member": invitee.external_id,
            "inviter": inviter.external_id,
            "referral_id": referral.pk,
            "state": referral.state,
            "hold_reason": referral.hold_reason or None,
        },
        member_id=invitee.pk,
    )
    return referral


def _hold(
    rules: ReferralRules,
    inviter: Member,
    invitee: Member,
    invitee_signals: set[tuple[str, str]],
    now,
) -> tuple[str, dict[str, Any]]:
    """Why the referral is held for review ("" if it is not), with what an operator needs to
    judge it."""
    if invitee_signals:
        # The inviter's own signals, and those of the inviter's other invitees (one person
        # opening account after account).
        inviter_signals = _digests(rules, inviter, {})
        seen = set(
            ReferralSignal.objects.filter(
                Q(member=inviter)
                | Q(member__in=Referral.objects.filter(inviter=inviter).values("invitee")),
                digest__in=[digest for _, digest in invitee_signals],
            ).values_list("name", "digest")
        )
        shared = sorted({name for name, digest in invitee_signals & (inviter_signals | seen)})
        if shared:
            return Referral.HoldReason.SHARED_SIGNAL, {"signals": shared}
    recent = Referral.objects.filter(
        inviter=inviter, joined_at__gte=now - timedelta(hours=rules.burst_hours)
    ).count()
    if recent >= rules.burst_limit:
        return Referral.HoldReason.BURST, {"recent": recent, "hours": rules.burst_hours}
    return "", {}


def referral_erase(member: Member) -> None:
    """A member's erasure: their identity signals forgotten, their codes retired, and their
    host id taken out of the referral credits of the other side."""
    ReferralSignal.objects.filter(member=member).delete()
    ReferralCode.objects.filter(member=member, is_active=True).update(
        is_active=False, retired_at=timezone.now()
    )
    for referral in Referral.objects.filter(invitee=member).exclude(inviter_event=None):
        Event.objects.filter(pk=referral.inviter_event_id).update(attributes={})
    for referral in Referral.objects.filter(inviter=member).exclude(invitee_event=None):
        Event.objects.filter(pk=referral.invitee_event_id).update(attributes={})
