from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """What every part of the project shares: errors, the API's plumbing, idempotency, SQL."""

    name = "core"
    verbose_name = _("Core")
