from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Currency(models.TextChoices):
    GROWTH = "growth", _("Growth value")
    POINTS = "points", _("Points")


class EntryKind(models.TextChoices):
    EARN = "earn", _("Earned")
    SPEND = "spend", _("Spent")
    EXPIRE = "expire", _("Expired")
    REVERSE = "reverse", _("Reversed")
    ADJUST = "adjust", _("Operator adjustment")
    BONUS = "bonus", _("Bonus")
    REFUND = "refund", _("Refund")
    ACTIVATE = "activate", _("Pending points activated")


class SourceType(models.TextChoices):
    EVENT = "event", _("Event")
    REDEMPTION = "redemption", _("Redemption")
    ADJUSTMENT = "adjustment", _("Operator adjustment")
    BADGE = "badge", _("Badge")
    QUEST = "quest", _("Quest")
    GIFT = "gift", _("Gift")
    EXPIRY = "expiry", _("Expiry")
    REVERSAL = "reversal", _("Event reversal")
    HOLD = "hold", _("Hold period")
    SHORTFALL = "shortfall", _("Shortfall repaid")


class LedgerEntry(models.Model):
    """An append-only, signed, integer movement of one currency for one member.

    The database refuses UPDATE and DELETE on this table (trigger in migration 0002).
    A ``pending`` entry moves points on hold; activation moves them out of the pending bucket
    and into the spendable one with two entries. ``effective_at`` is when the movement counts (an event's occurrence time), which places
    growth in tier windows; ``created_at`` is when it was written.
    """

    # No index of its own: a composite index of the table (below) leads with it.
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.PROTECT,
        related_name="ledger",
        db_index=False,
        verbose_name=_("member"),
    )
    currency = models.CharField(max_length=6, choices=Currency.choices, verbose_name=_("currency"))
    kind = models.CharField(max_length=8, choices=EntryKind.choices, verbose_name=_("kind"))
    amount = models.BigIntegerField(verbose_name=_("amount"))
    pending = models.BooleanField(
        default=False,
        help_text=_("Moves points on hold (the pending bucket), not spendable ones."),
        verbose_name=_("pending"),
    )
    source_type = models.CharField(
        max_length=12, choices=SourceType.choices, verbose_name=_("source type")
    )
    source_id = models.CharField(max_length=64, blank=True, verbose_name=_("source id"))
    event = models.ForeignKey(
        "loyalty.Event",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entries",
        verbose_name=_("event"),
    )
    rule_version = models.ForeignKey(
        "loyalty.EarningRuleVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entries",
        verbose_name=_("rule version"),
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("operator"),
    )
    reason = models.CharField(max_length=200, blank=True, verbose_name=_("reason"))
    effective_at = models.DateTimeField(verbose_name=_("effective at"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("ledger entry")
        ordering = ["-id"]
        verbose_name_plural = _("ledger entries")
        constraints = [
            models.CheckConstraint(condition=~models.Q(amount=0), name="entry_amount_not_zero"),
        ]
        indexes = [
            models.Index(fields=["member", "-id"], name="ledger_member_idx"),
            # Growth in a tier window is summed from this index alone (amount included): no
            # visit to the table's pages for each entry of the window.
            models.Index(
                fields=["member", "currency", "effective_at"],
                include=["amount"],
                name="ledger_window_amount_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.amount:+d} {self.currency} ({self.kind})"
