from django.db import models
from django.utils.translation import gettext_lazy as _

# The standing's balance columns the ledger moves: each equals a sum of the member's entries.
BUCKETS = ("growth", "points", "points_pending", "points_earned", "points_spent", "points_expired")


class MemberStanding(models.Model):
    """A member's place in the program: cached balances, tier, counters. One row per member;
    every write to it happens under its row lock (``loyalty.persistence.locks``).

    *Invariant*: ``growth`` and the point buckets equal the sums of the member's ledger entries
    (``manage.py verify_ledger`` proves it).
    """

    member = models.OneToOneField(
        "accounts.Member",
        primary_key=True,
        on_delete=models.PROTECT,
        related_name="standing",
        verbose_name=_("member"),
    )
    growth = models.BigIntegerField(default=0, verbose_name=_("growth"))
    # Spends never take it below zero (checked under the member's lock);
    # only a reversal of already-spent points can, when the program allows negative balances.
    points = models.BigIntegerField(
        default=0, help_text=_("Spendable points."), verbose_name=_("points")
    )
    points_pending = models.BigIntegerField(
        default=0,
        help_text=_("Points on hold, not yet spendable."),
        verbose_name=_("points pending"),
    )
    points_earned = models.BigIntegerField(
        default=0, help_text=_("Lifetime points earned."), verbose_name=_("points earned")
    )
    points_spent = models.BigIntegerField(
        default=0, help_text=_("Lifetime points spent."), verbose_name=_("points spent")
    )
    points_expired = models.BigIntegerField(
        default=0, help_text=_("Lifetime points expired."), verbose_name=_("points expired")
    )
    points_owed = models.BigIntegerField(
        default=0,
        help_text=_(
            "Points a reversal could not take back because they were spent: an open debt "
            "that the member's next credits repay first."
        ),
        verbose_name=_("points owed"),
    )
    tier = models.ForeignKey(
        "loyalty.Tier",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("tier"),
    )
    tier_since = models.DateTimeField(null=True, blank=True, verbose_name=_("tier since"))
    locked_tier = models.ForeignKey(
        "loyalty.Tier",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text=_("Operator lock: the review never lowers the member below this tier."),
        verbose_name=_("locked tier"),
    )
    grace_until = models.DateTimeField(
        null=True,
        blank=True,
        help_text=_("Below the tier's threshold: the review lowers it after this."),
        verbose_name=_("grace until"),
    )
    events_count = models.PositiveBigIntegerField(default=0, verbose_name=_("events count"))
    last_event_at = models.DateTimeField(null=True, blank=True, verbose_name=_("last event at"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    class Meta:
        verbose_name = _("member standing")
        verbose_name_plural = _("member standings")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(points_pending__gte=0), name="pending_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(points_earned__gte=0), name="earned_not_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(points_owed__gte=0), name="owed_not_negative"
            ),
        ]

    def __str__(self) -> str:
        member = self.member
        if member.display_name:
            return f"{member.display_name} ({member.external_id})"
        return member.external_id
