from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Rewards catalog")

    def ready(self) -> None:
        from loyalty.engine.data_rights import register_export_section
        from loyalty.insight.dashboard import register_panel
        from loyalty.insight.job import register_record
        from loyalty.insight.sources import register
        from rewards import insight
        from rewards.models import Redemption

        # The console counts redemptions per reward and day, and shows them on the dashboard.
        register(insight.SOURCE)
        register_record(insight.RECORD)
        register_panel(insight.panel)

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
