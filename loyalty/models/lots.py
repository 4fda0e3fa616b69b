from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

MONTH_DAY = RegexValidator(r"^(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", "Use MM-DD, e.g. 12-31.")


class ExpiryPolicy(models.TextChoices):
    INHERIT = "inherit", _("The program's default")
    NEVER = "never", _("Never")
    DAYS = "days", _("N days after earning")
    END_OF_MONTH = "end_of_month", _("End of the month, N months after earning")
    YEARLY_DATE = "yearly_date", _("A fixed date, N years after the year of earning")


class PointLot(models.Model):
    """Points earned together, spent and expired as one: a credit's lot.

    ``remaining`` is what is left to spend; spends take the lots closest to expiry first.
    A pending lot (on hold) is not spendable until ``activates_at``. Lots change only under
    the member's standing lock; the ledger stays the record of every movement.
    """

    member = models.ForeignKey(
        "accounts.Member", on_delete=models.PROTECT, related_name="lots", verbose_name=_("member")
    )
    entry = models.OneToOneField(
        "loyalty.LedgerEntry",
        on_delete=models.PROTECT,
        related_name="lot",
        help_text=_("The credit."),
        verbose_name=_("entry"),
    )
    event = models.ForeignKey(
        "loyalty.Event",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="lots",
        verbose_name=_("event"),
    )
    amount = models.BigIntegerField(verbose_name=_("amount"))
    remaining = models.BigIntegerField(verbose_name=_("remaining"))
    pending = models.BooleanField(default=False, verbose_name=_("pending"))
    activates_at = models.DateTimeField(null=True, blank=True, verbose_name=_("activates at"))
    expires_at = models.DateTimeField(null=True, blank=True, verbose_name=_("expires at"))
    expiry_notified_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("expiry notified at")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("point lot")
        verbose_name_plural = _("point lots")
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="lot_amount_positive"),
            models.CheckConstraint(
                condition=models.Q(remaining__gte=0, remaining__lte=models.F("amount")),
                name="lot_remaining_in_range",
            ),
        ]
        indexes = [
            # The order lots are taken in (``lots_take``): a redemption reads the lots it takes,
            # not every open lot of the member (many share one expiry, or none).
            models.Index(
                fields=["member", "expires_at", "id"],
                name="lot_open_idx",
                condition=models.Q(remaining__gt=0),
            ),
            models.Index(
                fields=["expires_at"],
                name="lot_expiry_idx",
                condition=models.Q(remaining__gt=0, pending=False),
            ),
            models.Index(
                fields=["activates_at"], name="lot_activation_idx", condition=models.Q(pending=True)
            ),
        ]

    def __str__(self) -> str:
        return f"lot {self.pk}: {self.remaining}/{self.amount}"


class LotMovement(models.Model):
    """How much of a lot a debit (spend, expiry, reversal, activation) took, so a refund can
    restore points with their original expiry and ``verify_ledger`` can account for each lot."""

    lot = models.ForeignKey(
        PointLot, on_delete=models.PROTECT, related_name="movements", verbose_name=_("lot")
    )
    entry = models.ForeignKey(
        "loyalty.LedgerEntry",
        on_delete=models.PROTECT,
        related_name="lot_movements",
        verbose_name=_("entry"),
    )
    amount = models.BigIntegerField(
        help_text=_("Points taken from the lot (positive)."), verbose_name=_("amount")
    )

    class Meta:
        verbose_name = _("lot movement")
        verbose_name_plural = _("lot movements")
        constraints = [
            models.CheckConstraint(condition=models.Q(amount__gt=0), name="lot_movement_positive")
        ]

    def __str__(self) -> str:
        return f"{self.amount} from lot {self.lot_id}"
