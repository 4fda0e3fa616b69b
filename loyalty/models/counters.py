from django.db import models
from django.utils.translation import gettext_lazy as _

from loyalty.models.actions import EarningRule, Period


class RuleCounter(models.Model):
    """What one rule credited one member in one period (for caps) and when (for cooldowns).

    ``period_start`` is the first local day of the period in the program's time zone; lifetime
    counters use 1970-01-01. Rows are bumped with ``F()`` under the member's lock.
    """

    # No index of its own: a composite index of the table (below) leads with it.
    member = models.ForeignKey(
        "accounts.Member",
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,
        verbose_name=_("member"),
    )
    rule = models.ForeignKey(
        EarningRule, on_delete=models.CASCADE, related_name="+", verbose_name=_("rule")
    )
    period = models.CharField(max_length=10, choices=Period.choices, verbose_name=_("period"))
    period_start = models.DateField(verbose_name=_("period start"))
    occurrences = models.PositiveIntegerField(default=0, verbose_name=_("occurrences"))
    points = models.BigIntegerField(default=0, verbose_name=_("points"))
    growth = models.BigIntegerField(default=0, verbose_name=_("growth"))
    last_credited_at = models.DateTimeField(null=True, verbose_name=_("last credited at"))

    class Meta:
        verbose_name = _("rule counter")
        verbose_name_plural = _("rule counters")
        constraints = [
            models.UniqueConstraint(
                fields=["member", "rule", "period", "period_start"], name="one_counter_per_period"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule_id}/{self.period}/{self.period_start}: {self.occurrences}"
