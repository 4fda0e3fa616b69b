from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    name = "rewards"
    verbose_name = _("Rewards catalog")

    def ready(self) -> None:
        from loyalty.campaigns.runs import RewardGift, register_reward_gift
        from loyalty.center.nav import register_page
        from loyalty.engine.data_rights import register_erase_step, register_export_section
        from loyalty.engine.observers import register_events_observer, register_reversal_observer
        from loyalty.insight.dashboard import register_panel
        from loyalty.insight.job import register_record
        from loyalty.insight.sources import register
        from loyalty.program.program_file import FileSection, register_file_section
        from rewards import center, insight
        from rewards.models import Redemption, Reward
        from rewards.referrals import center as referral_center
        from rewards.referrals import insight as referral_insight
        from rewards.referrals.attribution import referral_erase
        from rewards.referrals.program_file import referrals_export, referrals_load
        from rewards.referrals.qualification import referrals_on_events, referrals_on_reversal
        from rewards.referrals.selectors import referral_export
        from rewards.services.catalog_file import catalog_export, catalog_load
        from rewards.services.redemptions import reward_gift

        # The console counts redemptions per reward and day, and shows them on the dashboard.
        register(insight.SOURCE)
        register_record(insight.RECORD)
        register_panel(insight.panel)
        register(referral_insight.SOURCE)
        register_record(referral_insight.RECORD)
        register_panel(referral_insight.panel)

        # Campaigns give rewards as gifts: redemptions at no cost.
        register_reward_gift(
            RewardGift(
                give=lambda member, code, key, reason: reward_gift(
                    member=member, reward_code=code, idempotency_key=key, reason=reason
                ),
                exists=lambda code: Reward.objects.filter(code=code).exists(),
            )
        )

        # Referrals: the event flow's qualifying actions, and refunds of them.
        register_events_observer(referrals_on_events)
        register_reversal_observer(referrals_on_reversal)

        # The member center's points mall.
        register_page(center.NAV, before="leaderboards")
        register_page(referral_center.NAV)

        # The program file carries the catalog as its ``rewards`` section.
        register_file_section(
            FileSection(
                "rewards",
                catalog_export,
                lambda data, switch_off: catalog_load(data=data, switch_off_missing=switch_off),
            )
        )

        # … and the referral settings as its ``referrals`` section.
        register_file_section(FileSection("referrals", referrals_export, referrals_load))

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
        register_export_section("referrals", referral_export)
        register_erase_step("referrals", referral_erase)
