from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = _("Loyalty program")

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from loyalty.insight.access import ensure_analyst_group

        post_migrate.connect(ensure_analyst_group, sender=self)
