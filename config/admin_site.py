"""The operators' admin, its index grouped by what operators do rather than by table."""

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.utils.translation import gettext_lazy as _

# (section, [(app label, model name)…]), in the order operators meet them.
SECTIONS = [
    (
        _("Program: what counts and how much"),
        [
            ("loyalty", "Program"),
            ("loyalty", "Action"),
            ("loyalty", "EarningRule"),
            ("loyalty", "Tier"),
            ("loyalty", "KeyAction"),
            ("loyalty", "Gift"),
        ],
    ),
    (
        _("Engagement: badges, streaks, quests, leaderboards"),
        [
            ("loyalty", "Badge"),
            ("loyalty", "Streak"),
            ("loyalty", "Quest"),
            ("loyalty", "Leaderboard"),
        ],
    ),
    (
        _("Rewards catalog"),
        [("rewards", "Reward"), ("rewards", "CouponPool"), ("rewards", "Redemption")],
    ),
    (
        _("Members"),
        [
            ("accounts", "Member"),
            ("loyalty", "MemberStanding"),
            ("loyalty", "Adjustment"),
            ("loyalty", "MemberActivity"),
            ("loyalty", "BadgeAward"),
            ("loyalty", "GiftGrant"),
        ],
    ),
    (
        _("Records: what happened"),
        [
            ("loyalty", "Event"),
            ("loyalty", "LedgerEntry"),
            ("loyalty", "EventBatchJob"),
            ("loyalty", "ActivityTransition"),
        ],
    ),
    (
        _("Integration: API clients and webhooks"),
        [
            ("accounts", "ApiClient"),
            ("loyalty", "WebhookEndpoint"),
            ("loyalty", "WebhookDelivery"),
        ],
    ),
]


class LoyaltyAdminSite(admin.AdminSite):
    site_header = _("Loyalty program administration")
    site_title = _("Loyalty program")
    index_title = _("Run the program")

    def get_app_list(self, request, app_label=None):
        """On the index and in the side bar, the sections above first (each model the operator
        may see), then whatever other apps are installed, as Django lists them."""
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        models = {(app["app_label"], m["object_name"]): m for app in apps for m in app["models"]}
        sections = []
        for index, (name, members) in enumerate(SECTIONS):
            shown = [models.pop(key) for key in members if key in models]
            if shown:
                sections.append(
                    {
                        "name": name,
                        "app_label": f"section-{index}",
                        "app_url": shown[0].get("admin_url") or "",
                        "has_module_perms": True,
                        "models": shown,
                    }
                )
        rest = []
        for app in apps:
            left = [m for m in app["models"] if (app["app_label"], m["object_name"]) in models]
            if left:
                rest.append({**app, "models": left})
        return sections + rest


class LoyaltyAdminConfig(AdminConfig):
    default_site = "config.admin_site.LoyaltyAdminSite"
