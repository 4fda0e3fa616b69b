from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Rewards catalog")

    def ready(self) -> None:
        from loyalty.engine.data_rights import register_export_section
        from rewards.models import Redemption

        # A member's data export includes their redemptions.
        register_export_section(
            "redemptions",
            lambda member: list(
                Redemption.objects.filter(member=member)
                .order_by("id")
                .values(
                    "id",
                    "reward__code",
                    "status",
                    "points_cost",
                    "coupon_code",
                    "details",
                    "created_at",
                    "cancelled_at",
                )
            ),
        )
