from django.conf import settings
from django.db import models


class Currency(models.TextChoices):
    GROWTH = "growth", "Growth value"
    POINTS = "points", "Points"


class EntryKind(models.TextChoices):
    EARN = "earn", "Earned"
    SPEND = "spend", "Spent"
    EXPIRE = "expire", "Expired"
    REVERSE = "reverse", "Reversed"
    ADJUST = "adjust", "Operator adjustment"
    BONUS = "bonus", "Bonus"
    REFUND = "refund", "Refund"
    ACTIVATE = "activate", "Pending points activated"


class SourceType(models.TextChoices):
    EVENT = "event", "Event"
    REDEMPTION = "redemption", "Redemption"
    ADJUSTMENT = "adjustment", "Operator adjustment"
    BADGE = "badge", "Badge"
    QUEST = "quest", "Quest"
    GIFT = "gift", "Gift"
    EXPIRY = "expiry", "Expiry"
    REVERSAL = "reversal", "Event reversal"
    HOLD = "hold", "Hold period"
    SHORTFALL = "shortfall", "Shortfall repaid"


class LedgerEntry(models.Model):
    """An append-only, signed, integer movement of one currency for one member.

    The database refuses UPDATE and DELETE on this table (trigger in migration 0002).
    A ``pending`` entry moves points on hold; activation moves them out of the pending bucket
    and into the spendable one with two entries. ``effective_at`` is when the movement counts (an event's occurrence time), which places
    growth in tier windows; ``created_at`` is when it was written.
    """

    # No index of its own: a composite index of the table (below) leads with it.
    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="ledger", db_index=False
    )
    currency = models.CharField(max_length=6, choices=Currency.choices)
    kind = models.CharField(max_length=8, choices=EntryKind.choices)
    amount = models.BigIntegerField()
    pending = models.BooleanField(
        default=False, help_text="Moves points on hold (the pending bucket), not spendable ones."
    )
    source_type = models.CharField(max_length=12, choices=SourceType.choices)
    source_id = models.CharField(max_length=64, blank=True)
    event = models.ForeignKey(
        "loyalty.Event", null=True, blank=True, on_delete=models.PROTECT, related_name="entries"
    )
    rule_version = models.ForeignKey(
        "loyalty.EarningRuleVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="entries",
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    reason = models.CharField(max_length=200, blank=True)
    effective_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-id"]
        verbose_name_plural = "ledger entries"
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
