from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from accounts.models import idempotency_client
from loyalty.models.ledger import Currency


class Adjustment(models.Model):
    """An operator's credit or debit of a member, always with a reason and who made it; stored
    once per idempotency key (a retried request or a re-uploaded bulk file changes nothing)."""

    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.PROTECT,
        related_name="adjustments",
        verbose_name=_("member"),
    )
    currency = models.CharField(max_length=6, choices=Currency.choices, verbose_name=_("currency"))
    amount = models.BigIntegerField(verbose_name=_("amount"))
    reason = models.CharField(max_length=200, verbose_name=_("reason"))
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("operator"),
    )
    client = idempotency_client()
    idempotency_key = models.CharField(max_length=200, verbose_name=_("idempotency key"))
    request_hash = models.CharField(max_length=64, verbose_name=_("request hash"))
    entry = models.OneToOneField(
        "loyalty.LedgerEntry", on_delete=models.PROTECT, related_name="+", verbose_name=_("entry")
    )
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created at"))

    class Meta:
        verbose_name = _("adjustment")
        verbose_name_plural = _("adjustments")
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["client", "idempotency_key"],
                name="one_adjustment_per_idempotency_key",
                nulls_distinct=False,
            ),
            models.CheckConstraint(condition=~models.Q(amount=0), name="adjustment_not_zero"),
        ]
        indexes = [models.Index(fields=["idempotency_key"], name="adjustment_key_idx")]

    def __str__(self) -> str:
        return f"{self.amount:+d} {self.currency} for {self.member_id}: {self.reason}"


class MemberErasure(models.Model):
    """That a member's personal data was erased, when and by whom (the record itself holds none)."""

    member = models.OneToOneField(
        "accounts.Member", on_delete=models.PROTECT, related_name="+", verbose_name=_("member")
    )
    operator = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        verbose_name=_("operator"),
    )
    erased_at = models.DateTimeField(auto_now_add=True, verbose_name=_("erased at"))

    class Meta:
        verbose_name = _("member erasure")
        verbose_name_plural = _("member erasures")

    def __str__(self) -> str:
        return f"member {self.member_id} erased at {self.erased_at:%Y-%m-%d}"
