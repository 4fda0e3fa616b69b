from django.apps import AppConfig


class LoyaltyConfig(AppConfig):
    name = "loyalty"
    verbose_name = "Loyalty program"

    def ready(self) -> None:
        from loyalty import lookups  # noqa: F401  (registers ``__any``)
