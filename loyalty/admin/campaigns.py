"""Campaigns in the admin: define one, run it now or let the schedule run it, and read each
run's outcomes and recall against its holdout."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from core.tasks import queue_after_commit
from loyalty.admin.base import ReadOnlyAdmin
from loyalty.campaigns.runs import campaign_run_start, outcomes, recall, reward_gift
from loyalty.models import Campaign, CampaignRun, CampaignTarget


class RunInline(admin.TabularInline):
    model = CampaignRun
    extra = 0
    can_delete = False
    fields = ["scheduled_for", "status", "audience", "finished_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


class CampaignForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = [
            "code",
            "name",
            "segment",
            "kind",
            "amount",
            "reward",
            "subject",
            "body",
            "starts_at",
            "repeat",
            "ends_at",
            "holdout_percent",
            "budget",
            "include_active",
            "return_days",
            "is_active",
        ]

    def clean(self):
        data = super().clean()
        kind, code = data.get("kind"), data.get("reward", "").strip()
        if kind == Campaign.Kind.REWARD:
            gift = reward_gift()
            if gift is None or not code or not gift.exists(code):
                self.add_error(
                    "reward",
                    forms.ValidationError(
                        _("Name a reward of the catalog by its code."), code="unknown_reward"
                    ),
                )
        elif kind in (Campaign.Kind.POINTS, Campaign.Kind.GROWTH) and not data.get("amount"):
            self.add_error(
                "amount",
                forms.ValidationError(
                    _("A grant of points or growth needs an amount."), code="amount_required"
                ),
            )
        return data


@admin.register(Campaign)
class CampaignAdmin(SimpleHistoryAdmin):
    form = CampaignForm
    list_display = [
        "code",
        "name",
        "segment",
        "kind",
        "repeat",
        "starts_at",
        "budget",
        "spent",
        "is_active",
    ]
    list_filter = ["kind", "repeat", "is_active"]
    search_fields = ["code", "name"]
    readonly_fields = ["spent"]
    inlines = [RunInline]
    actions = ["run_now"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description=_("Run now for the segment's members"))
    def run_now(self, request, queryset) -> None:
        """Snapshot the audience now; a worker serves it (a large segment would outlast the
        request). The run's page shows the outcomes as they come."""
        for campaign in queryset:
            run = campaign_run_start(campaign, scheduled_for=timezone.now())
            if run is None:
                continue
            queue_after_commit("loyalty.serve_campaign_run", run.pk)
            self.message_user(
                request,
                gettext("%(campaign)s: a run for %(audience)s members has started.")
                % {"campaign": campaign, "audience": run.audience},
                messages.SUCCESS,
            )


@admin.register(CampaignRun)
class CampaignRunAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "scheduled_for", "status", "audience", "finished_at"]
    list_filter = ["status", "campaign"]
    readonly_fields = [
        "campaign",
        "scheduled_for",
        "status",
        "audience",
        "finished_at",
        "outcome_counts",
        "recall_table",
    ]
    fields = readonly_fields

    @admin.display(description=_("outcomes"))
    def outcome_counts(self, run: CampaignRun) -> str:
        counts = format_html_join(
            ", ",
            "{}: {}",
            ((CampaignTarget.Outcome(k).label, n) for k, n in sorted(outcomes(run).items())),
        )
        # Why grants were refused or failed, by error code (out_of_stock, limit_reached, …).
        why = run.targets.exclude(detail="").values("detail").annotate(n=Count("pk"))
        if not why:
            return counts
        return format_html(
            "{}<br>{} {}",
            counts,
            _("Why:"),
            format_html_join(
                ", ", "{}: {}", ((w["detail"], w["n"]) for w in why.order_by("detail"))
            ),
        )

    @admin.display(description=_("recall"))
    def recall_table(self, run: CampaignRun) -> str:
        found = recall(run)
        rows = []
        for name, label in (("reached", _("Reached")), ("holdout", _("Held out"))):
            r = found[name]
            rows.append(
                (
                    label,
                    r.targets,
                    r.delivered,
                    r.returned,
                    f"{r.share(r.returned):.1f} %" if r.targets else "–",
                    r.retained,
                    f"{r.share(r.retained):.1f} %" if r.targets else "–",
                )
            )
        head = (
            _("group"),
            _("members"),
            _("delivered"),
            _("returned"),
            _("returned (%)"),
            _("retained after 4 weeks"),
            _("retained (%)"),
        )
        body = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            [head, *rows],
        )
        return format_html('<table id="recall">{}</table>', body)
