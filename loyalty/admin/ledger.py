"""The operators' admin of what happened: events, the ledger, batches, adjustments and each
member's standing."""

import hashlib
import json
import uuid
from datetime import datetime

from django import forms
from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _

from core.errors import InvalidInput
from loyalty.admin.base import ReadOnlyAdmin, admin_page
from loyalty.engine.adjustments import bulk_award, parse_award_rows
from loyalty.engine.data_rights import member_erase, member_export
from loyalty.engine.tier_review import tier_lock
from loyalty.models import (
    Adjustment,
    Currency,
    Event,
    EventBatchJob,
    LedgerEntry,
    MemberStanding,
    TierChange,
)

# --- What happened ----------------------------------------------------------------------------


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "member",
        "action_code",
        "status",
        "reason",
        "growth",
        "points",
        "occurred_at",
    ]
    list_filter = ["status", "reason", "action_code"]
    search_fields = ["member__external_id", "idempotency_key"]
    list_select_related = ["member"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "member",
        "currency",
        "kind",
        "amount",
        "source_type",
        "source_id",
        "rule_version",
        "effective_at",
    ]
    list_filter = ["currency", "kind", "source_type"]
    search_fields = ["member__external_id", "source_id", "reason"]
    list_select_related = ["member", "rule_version__rule"]
    date_hierarchy = "created_at"
    show_full_result_count = False


@admin.register(EventBatchJob)
class EventBatchJobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "client",
        "status",
        "total",
        "succeeded",
        "failed",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status"]
    exclude = ["items", "results"]


class AwardForm(forms.Form):
    """Credit or debit many members at once; the batch key makes a resubmission a no-op."""

    currency = forms.ChoiceField(choices=Currency.choices, initial=Currency.POINTS)
    amount = forms.IntegerField(
        required=False, help_text=_("For the selected members; a file gives its own.")
    )
    reason = forms.CharField(max_length=200)
    file = forms.FileField(required=False, help_text=_("CSV lines: external_id,amount"))
    batch_key = forms.CharField(widget=forms.HiddenInput)


def _award_view(model_admin, request, *, member_ids: list[str] | None, selected: list[int] = ()):
    """One form for both bulk awards: to selected members, or to the lines of a CSV file."""
    # The list page's POST (the action and the selection) opens the form; only the form's own
    # POST ("apply") is bound, so the form opens clean with a fresh batch key.
    applied = request.method == "POST" and "apply" in request.POST
    form = AwardForm(
        request.POST if applied else None,
        request.FILES if applied else None,
        initial={"batch_key": uuid.uuid4().hex},
    )
    report = None
    if applied and form.is_valid():
        data = form.cleaned_data
        try:
            if data["file"]:
                content = data["file"].read().decode("utf-8-sig")
                rows = parse_award_rows(content)
                # The same file with the same reason is the same batch, however often uploaded.
                batch = hashlib.sha256(
                    f"{content}|{data['currency']}|{data['reason']}".encode()
                ).hexdigest()[:32]
            elif member_ids and data["amount"]:
                rows = [(external_id, data["amount"]) for external_id in member_ids]
                batch = data["batch_key"]
            else:
                raise InvalidInput("Give an amount for the selected members, or a file.")
            report = bulk_award(
                rows=rows,
                currency=data["currency"],
                reason=data["reason"],
                batch_key=batch,
                operator=request.user,
            )
            model_admin.message_user(request, f"Bulk award: {report}")
        except InvalidInput as error:
            model_admin.message_user(
                request, f"{error.message} {error.details or ''}", level=messages.ERROR
            )
    return admin_page(
        model_admin,
        request,
        "admin/loyalty/award.html",
        title=_("Award growth or points"),
        form=form,
        member_ids=member_ids or [],
        selected=selected,
        report=report,
    )


@admin.register(Adjustment)
class AdjustmentAdmin(ReadOnlyAdmin):
    change_list_template = "admin/loyalty/adjustment/change_list.html"
    list_display = [
        "id",
        "member",
        "currency",
        "amount",
        "reason",
        "operator",
        "client",
        "created_at",
    ]
    list_filter = ["currency"]
    search_fields = ["member__external_id", "reason", "idempotency_key"]
    list_select_related = ["member", "operator", "client"]

    def get_urls(self):
        view = self.admin_site.admin_view(
            lambda request: _award_view(self, request, member_ids=None)
        )
        return [
            path("bulk-award/", view, name="loyalty_adjustment_bulk_award"),
            *super().get_urls(),
        ]


class StandingForm(forms.ModelForm):
    class Meta:
        model = MemberStanding
        fields = ["locked_tier"]


@admin.register(MemberStanding)
class MemberStandingAdmin(admin.ModelAdmin):
    """The member page: balances, tier and its history, recent activity; lock the tier."""

    form = StandingForm
    list_display = [
        "member",
        "tier",
        "growth",
        "points",
        "points_pending",
        "events_count",
        "last_event_at",
    ]
    list_filter = ["tier"]
    search_fields = ["member__external_id", "member__display_name", "member__email"]
    list_select_related = ["member", "tier"]
    ordering = ["-growth"]
    show_full_result_count = False
    actions = ["award", "export_data", "erase_personal_data"]
    readonly_fields = [
        "member_link",
        "tier",
        "tier_since",
        "grace_until",
        "growth",
        "points",
        "points_pending",
        "points_earned",
        "points_spent",
        "points_expired",
        "events_count",
        "last_event_at",
        "tier_history",
        "recent_events",
        "recent_ledger",
    ]
    fieldsets = [
        (None, {"fields": ["member_link", "tier", "tier_since", "grace_until", "locked_tier"]}),
        (
            _("Balances"),
            {
                "fields": [
                    "growth",
                    "points",
                    "points_pending",
                    "points_earned",
                    "points_spent",
                    "points_expired",
                ]
            },
        ),
        (
            _("Activity"),
            {
                "fields": [
                    "events_count",
                    "last_event_at",
                    "recent_events",
                    "recent_ledger",
                    "tier_history",
                ]
            },
        ),
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("member"))
    def member_link(self, standing: MemberStanding) -> str:
        url = reverse("admin:accounts_member_change", args=[standing.pk])
        return format_html('<a href="{}">{}</a>', url, standing.member)

    @admin.display(description=_("tier history"))
    def tier_history(self, standing: MemberStanding) -> str:
        changes = TierChange.objects.filter(member_id=standing.pk).select_related(
            "from_tier", "to_tier"
        )[:20]
        return _table(
            ["when", "from", "to", "why", "growth", "note"],
            [
                (
                    c.created_at,
                    c.from_tier or "—",
                    c.to_tier or "—",
                    c.get_reason_display(),
                    c.qualifying_growth,
                    c.note,
                )
                for c in changes
            ],
        )

    @admin.display(description=_("recent events"))
    def recent_events(self, standing: MemberStanding) -> str:
        events = Event.objects.filter(member_id=standing.pk)[:20]
        return _table(
            ["occurred", "action", "status", "reason", "growth", "points"],
            [
                (
                    e.occurred_at,
                    e.action_code,
                    e.get_status_display(),
                    e.get_reason_display(),
                    e.growth,
                    e.points,
                )
                for e in events
            ],
        )

    @admin.display(description=_("recent ledger entries"))
    def recent_ledger(self, standing: MemberStanding) -> str:
        entries = LedgerEntry.objects.filter(member_id=standing.pk)[:20]
        return _table(
            ["effective", "currency", "kind", "amount", "source"],
            [
                (
                    e.effective_at,
                    e.get_currency_display(),
                    e.get_kind_display(),
                    e.amount,
                    f"{e.get_source_type_display()} {e.source_id}",
                )
                for e in entries
            ],
        )

    @admin.action(description=_("Award growth or points to the selected members"))
    def award(self, request, queryset):
        member_ids = list(queryset.values_list("member__external_id", flat=True))
        selected = list(queryset.values_list("pk", flat=True))
        return _award_view(self, request, member_ids=member_ids, selected=selected)

    @admin.action(description=_("Export the selected members' data (JSON)"))
    def export_data(self, request, queryset):
        data = [
            member_export(member=standing.member) for standing in queryset.select_related("member")
        ]
        response = HttpResponse(
            json.dumps(data, indent=2, cls=DjangoJSONEncoder), content_type="application/json"
        )
        response["Content-Disposition"] = 'attachment; filename="member-data.json"'
        return response

    @admin.action(description=_("Erase the selected members' personal data (keeps the ledger)"))
    def erase_personal_data(self, request, queryset):
        for standing in queryset.select_related("member"):
            member_erase(member=standing.member, operator=request.user)
        self.message_user(request, f"Erased the personal data of {queryset.count()} member(s).")

    def save_model(self, request, obj: MemberStanding, form, change) -> None:
        if "locked_tier" in form.changed_data:
            tier_lock(
                member=obj.member,
                tier=obj.locked_tier,
                operator=request.user,
                note="set in the admin",
            )


def _table(headers: list[str], rows: list[tuple]) -> str:
    if not rows:
        return "—"
    head = format_html_join("", "<th>{}</th>", ((h,) for h in headers))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((format_html_join("", "<td>{}</td>", ((_cell(cell),) for cell in row)),) for row in rows),
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


def _cell(value):
    """A table cell as the operator reads it: times in their time zone and locale's format."""
    if isinstance(value, datetime):
        return date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")
    return value
