from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Members and API clients")

    def ready(self) -> None:
        from accounts.api import schema  # noqa: F401  registers the OpenAPI auth schemes
