import uuid

from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from loyalty.models.audit import operator_of
from loyalty.models.lots import MONTH_DAY, ExpiryPolicy


class Program(models.Model):
    """The program's own settings: one row (pk=1).

    ``revision`` is renewed with every operator change to actions, rules, tiers or privileges;
    each process compares it with the revision it compiled and recompiles when it differs. A
    fresh random value (not a counter) cannot repeat after a rolled-back change.
    """

    class UnknownMembers(models.TextChoices):
        CREATE = "create", _("Create the member on the fly")
        REFUSE = "refuse", _("Refuse the event (member_not_found)")

    name = models.CharField(max_length=100, default="Loyalty program")
    unknown_members = models.CharField(
        max_length=10, choices=UnknownMembers.choices, default=UnknownMembers.CREATE
    )

    class Shortfall(models.TextChoices):
        NEGATIVE = "negative", _("Allow a negative balance")
        RECORD = "record", _("Take what is left and record the shortfall")

    points_expiry = models.CharField(
        max_length=16,
        choices=[c for c in ExpiryPolicy.choices if c[0] != ExpiryPolicy.INHERIT],
        default=ExpiryPolicy.NEVER,
        help_text=_("When earned points expire, unless a rule says otherwise."),
    )
    points_expiry_n = models.PositiveIntegerField(
        default=12, help_text=_("The N of the expiry policy (days, months or years).")
    )
    points_expiry_date = models.CharField(
        max_length=5,
        default="12-31",
        validators=[MONTH_DAY],
        help_text=_("MM-DD, for the fixed yearly date policy."),
    )
    reversal_shortfall = models.CharField(
        max_length=10,
        choices=Shortfall.choices,
        default=Shortfall.RECORD,
        help_text=_("When a reversal takes back points the member already spent."),
    )
    silent_after_days = models.PositiveIntegerField(
        default=7, help_text=_("Silent after this many days without the key action.")
    )
    at_risk_after_days = models.PositiveIntegerField(
        default=14, help_text=_("At risk after this many days.")
    )
    churned_after_days = models.PositiveIntegerField(
        default=35, help_text=_("Churned after this many days.")
    )
    expiring_notice_days = models.PositiveIntegerField(
        default=30,
        help_text=_("Tell members (webhook, e-mail) this many days before points expire."),
    )
    send_emails = models.BooleanField(
        default=False, help_text=_("Points-expiring and we-miss-you e-mails.")
    )
    revision = models.UUIDField(default=uuid.uuid4, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("program settings")
        verbose_name_plural = _("program settings")
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="program_singleton")]

    def __str__(self) -> str:
        return self.name
