"""An operator's review: approve or reject referrals, one or many at a time.

Approving a held referral lets it go on: rewarded at once if its friend already did the
qualifying action, else waiting for it (expired if its window passed). A referral held because
its qualifying order was refunded goes back to waiting for a new qualifying action. Rejecting
ends a referral; one already rewarded has both credits taken back.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from core.tasks import queue_after_commit_or_sweep
from rewards.referrals.models import Referral
from rewards.referrals.qualification import referral_rejected_emit, referral_take_back


@dataclass
class ReviewReport:
    done: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)  # not in a state the decision applies to


def referrals_approve(*, referral_ids: Iterable[int], actor=None) -> ReviewReport:
    report = ReviewReport()
    now = timezone.now()
    for pk in sorted(set(referral_ids)):
        if Referral.objects.filter(
            pk=pk, hold_reason=Referral.HoldReason.REFUNDED, friend_number__isnull=False
        ).exists():
            # Its credits are still to be taken back (the task has not run): first that.
            referral_take_back(referral_id=pk)
        with transaction.atomic():
            referral = (
                Referral.objects.select_for_update()
                .filter(pk=pk, state=Referral.State.HELD)
                .first()
            )
            if referral is None:
                report.skipped.append(pk)
                continue
            if referral.hold_reason == Referral.HoldReason.REFUNDED:
                # Its credits were taken back: a new qualifying action numbers it anew.
                referral.qualifying_event = None
                referral.qualified_at = None
                referral.friend_number = None
            if referral.qualifying_event_id is not None:
                referral.state = Referral.State.QUALIFIED
                queue_after_commit_or_sweep("rewards.referral_reward", referral.pk)
            elif referral.qualify_by < now:
                referral.state = Referral.State.EXPIRED
            else:
                referral.state = Referral.State.JOINED
            referral.hold_reason = Referral.HoldReason.NONE
            referral.reviewed_by, referral.reviewed_at = actor, now
            referral.save()
            report.done.append(pk)
    return report


def referrals_reject(*, referral_ids: Iterable[int], actor=None) -> ReviewReport:
    report = ReviewReport()
    now = timezone.now()
    for pk in sorted(set(referral_ids)):
        with transaction.atomic():
            referral = (
                Referral.objects.select_for_update(of=("self",))
                .select_related("inviter", "invitee")
                .filter(
                    pk=pk,
                    state__in=(
                        Referral.State.JOINED,
                        Referral.State.HELD,
                        Referral.State.QUALIFIED,
                    ),
                )
                .first()
            )
            if referral is None:
                report.skipped.append(pk)
                continue
            rewarded = (
                referral.rewarded_at is not None or referral.state == Referral.State.QUALIFIED
            )
            referral.state = Referral.State.REJECTED
            referral.reviewed_by, referral.reviewed_at = actor, now
            referral.save()
            referral_rejected_emit(referral, reason="review")
            if rewarded:
                queue_after_commit_or_sweep("rewards.referral_take_back", referral.pk)
            report.done.append(pk)
    return report
