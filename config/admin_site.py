"""The operators' admin, its index grouped by what operators do rather than by table."""

from django.contrib import admin
from django.utils.translation import gettext_lazy as _

from loyalty.insight.job import last_run
from loyalty.insight.views import CONSOLE, console_urls, dashboard_context

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
            ("loyalty", "Funnel"),
            ("loyalty", "ProgramDraft"),
            ("loyalty", "ProgramVersion"),
            ("loyalty", "SimulationRun"),
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
            ("loyalty", "Segment"),
            ("loyalty", "Campaign"),
            ("loyalty", "CampaignRun"),
            ("loyalty", "MemberActivity"),
            ("loyalty", "ChurnRisk"),
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
            ("loyalty", "TierChange"),
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
    index_template = "admin/console/index.html"

    def get_urls(self):
        return console_urls(self) + super().get_urls()

    def index(self, request, extra_context=None):
        """The first page: the dashboard for operators who may see the console, then the
        program's sections."""
        context = dict(extra_context or {})
        if request.user.has_perm(CONSOLE):
            context.update(dashboard_context(request), run=last_run())
        return super().index(request, context)

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
