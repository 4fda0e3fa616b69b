import uuid
from decimal import Decimal

from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from loyalty.models.audit import operator_of
from loyalty.models.lots import MONTH_DAY, ExpiryPolicy

# A colour written into the member center's style sheet: nothing but #rrggbb gets there.
HEX_COLOUR = RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Write a colour as #rrggbb."))


class Program(models.Model):
    """The program's own settings: one row (pk=1).

    ``revision`` is renewed with every operator change to actions, rules, tiers or privileges;
    each process compares it with the revision it compiled and recompiles when it differs. A
    fresh random value (not a counter) cannot repeat after a rolled-back change.
    """

    class UnknownMembers(models.TextChoices):
        CREATE = "create", _("Create the member on the fly")
        REFUSE = "refuse", _("Refuse the event (member_not_found)")

    name = models.CharField(max_length=100, default="Loyalty program", verbose_name=_("name"))
    unknown_members = models.CharField(
        max_length=10,
        choices=UnknownMembers.choices,
        default=UnknownMembers.CREATE,
        verbose_name=_("unknown members"),
    )

    class Shortfall(models.TextChoices):
        NEGATIVE = "negative", _("Allow a negative balance")
        RECORD = "record", _("Take what is left and record the shortfall")

    points_expiry = models.CharField(
        max_length=16,
        choices=[c for c in ExpiryPolicy.choices if c[0] != ExpiryPolicy.INHERIT],
        default=ExpiryPolicy.NEVER,
        help_text=_("When earned points expire, unless a rule says otherwise."),
        verbose_name=_("points expiry"),
    )
    points_expiry_n = models.PositiveIntegerField(
        default=12,
        help_text=_("The N of the expiry policy (days, months or years)."),
        verbose_name=_("points expiry n"),
    )
    points_expiry_date = models.CharField(
        max_length=5,
        default="12-31",
        validators=[MONTH_DAY],
        help_text=_("MM-DD, for the fixed yearly date policy."),
        verbose_name=_("points expiry date"),
    )
    reversal_shortfall = models.CharField(
        max_length=10,
        choices=Shortfall.choices,
        default=Shortfall.RECORD,
        help_text=_("When a reversal takes back points the member already spent."),
        verbose_name=_("reversal shortfall"),
    )
    silent_after_days = models.PositiveIntegerField(
        default=7,
        help_text=_("Silent after this many days without the key action."),
        verbose_name=_("silent after days"),
    )
    at_risk_after_days = models.PositiveIntegerField(
        default=14,
        help_text=_("At risk after this many days."),
        verbose_name=_("at risk after days"),
    )
    churned_after_days = models.PositiveIntegerField(
        default=35,
        help_text=_("Churned after this many days."),
        verbose_name=_("churned after days"),
    )
    expiring_notice_days = models.PositiveIntegerField(
        default=30,
        help_text=_("Tell members (webhook, e-mail) this many days before points expire."),
        verbose_name=_("expiring notice days"),
    )
    send_emails = models.BooleanField(
        default=False,
        help_text=_("Points-expiring and we-miss-you e-mails."),
        verbose_name=_("send emails"),
    )
    point_value = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        default=Decimal("0.01"),
        help_text=_("What one point costs the program, in its money (the liability's value)."),
        verbose_name=_("point value"),
    )
    money = models.CharField(
        max_length=3,
        default="CNY",
        help_text=_("The currency of the point value, e.g. CNY, USD."),
        verbose_name=_("money"),
    )
    version = models.PositiveIntegerField(
        default=0,
        editable=False,
        help_text=_("The number of the published version in force (0: none published yet)."),
        verbose_name=_("version"),
    )
    brand_colour = models.CharField(
        max_length=7,
        default="#0f766e",
        validators=[HEX_COLOUR],
        help_text=_("The member center's main colour, as #rrggbb."),
        verbose_name=_("brand colour"),
    )
    brand_text_colour = models.CharField(
        max_length=7,
        default="#ffffff",
        validators=[HEX_COLOUR],
        help_text=_("The colour of text on the brand colour, as #rrggbb."),
        verbose_name=_("brand text colour"),
    )
    logo_url = models.URLField(
        blank=True,
        help_text=_("The logo at the top of the member center's pages (https://…)."),
        verbose_name=_("logo URL"),
    )
    revision = models.UUIDField(default=uuid.uuid4, editable=False, verbose_name=_("revision"))
    updated_at = models.DateTimeField(auto_now=True, verbose_name=_("updated at"))

    history = HistoricalRecords(get_user=operator_of)

    class Meta:
        verbose_name = _("program settings")
        verbose_name_plural = _("program settings")
        constraints = [models.CheckConstraint(condition=models.Q(pk=1), name="program_singleton")]

    def __str__(self) -> str:
        return self.name
