"""The operators' admin: tune actions, rules, tiers and privileges; watch events, the ledger
and members' standing. Every change goes through the same services as the API."""

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
from simple_history.admin import SimpleHistoryAdmin

from core.errors import DomainError, InvalidInput
from loyalty import admin_activity, admin_gamification  # noqa: F401  register their admin pages
from loyalty.admin_base import ReadOnlyAdmin, admin_page
from loyalty.models import (
    Action,
    Adjustment,
    Currency,
    EarningRule,
    EarningRuleVersion,
    Event,
    EventBatchJob,
    LedgerEntry,
    MemberStanding,
    Privilege,
    Program,
    RuleCap,
    RuleCondition,
    Tier,
    TierChange,
)
from loyalty.selectors import program_changes
from loyalty.services.adjustments import bulk_award, parse_award_rows
from loyalty.services.data_rights import member_erase, member_export
from loyalty.services.events import EventInput, record_event
from loyalty.services.program import compiled_program, earning_rule_publish, program_changed
from loyalty.services.reconciliation import liability_report
from loyalty.services.tier_actions import tier_lock


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


# --- The program ------------------------------------------------------------------------------


@admin.register(Program)
class ProgramAdmin(SimpleHistoryAdmin):
    change_list_template = "admin/loyalty/program/change_list.html"
    list_display = ["name", "unknown_members", "points_expiry", "reversal_shortfall", "updated_at"]

    def get_urls(self):
        liability = self.admin_site.admin_view(self.liability_view)
        audit = self.admin_site.admin_view(self.audit_view)
        return [
            path("liability/", liability, name="loyalty_program_liability"),
            path("audit/", audit, name="loyalty_program_audit"),
            *super().get_urls(),
        ]

    def audit_view(self, request):
        """Every operator change to the program, newest first: who, when, what changed."""
        return admin_page(
            self,
            request,
            "admin/loyalty/audit.html",
            title=_("Program changes"),
            changes=program_changes(limit=300),
        )

    def liability_view(self, request):
        """Points outstanding, pending and expiring per month ahead."""
        return admin_page(
            self,
            request,
            "admin/loyalty/liability.html",
            title=_("Points liability"),
            report=liability_report(months=12),
        )

    def has_add_permission(self, request) -> bool:
        return not Program.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        obj.pk = 1
        super().save_model(request, obj, form, change)
        program_changed()


@admin.register(Action)
class ActionAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "is_active", "rule_count"]
    list_filter = ["is_active"]
    search_fields = ["code", "name"]

    @admin.display(description=_("rules"))
    def rule_count(self, action: Action) -> int:
        return action.rules.count()

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        program_changed()


class RuleConditionInline(admin.TabularInline):
    model = RuleCondition
    extra = 0


class RuleCapInline(admin.TabularInline):
    model = RuleCap
    extra = 0


class RuleVersionInline(ReadOnlyInline):
    model = EarningRuleVersion
    fields = ["version", "created_at", "created_by"]
    readonly_fields = fields
    ordering = ["-version"]
    verbose_name_plural = _("versions (each save makes one; credits name the version behind them)")


class EventPreviewForm(forms.Form):
    """An event to try: the member, the action, and a field for each attribute the action's
    rules read (its amount, the attributes its conditions test); more as JSON if need be."""

    external_id = forms.CharField(max_length=128, help_text=_("An existing or a new member."))
    action = forms.ModelChoiceField(queryset=Action.objects.all(), to_field_name="code")
    occurred_at = forms.DateTimeField(required=False, help_text=_("Default: now."))
    more_attributes = forms.JSONField(
        initial=dict, required=False, help_text=_('Any other attributes, e.g. {"channel": "app"}')
    )

    ATTRIBUTE_PREFIX = "attribute:"

    def __init__(self, *args, action_code: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        for name in action_attributes(action_code) if action_code else []:
            self.fields[self.ATTRIBUTE_PREFIX + name] = forms.CharField(
                label=name, required=False, help_text=_("Read by this action's rules.")
            )

    def clean_more_attributes(self):
        value = self.cleaned_data["more_attributes"] or {}
        if not isinstance(value, dict):
            raise forms.ValidationError("Attributes must be a JSON object.")
        return value

    def attributes(self) -> dict:
        """The event's attributes: the JSON ones, then each field given (a dotted name nests)."""
        attributes = dict(self.cleaned_data["more_attributes"])
        for field, value in self.cleaned_data.items():
            if field.startswith(self.ATTRIBUTE_PREFIX) and value != "":
                *parents, leaf = field.removeprefix(self.ATTRIBUTE_PREFIX).split(".")
                target = attributes
                for part in parents:
                    target = target.setdefault(part, {})
                target[leaf] = value
        return attributes


def action_attributes(action_code: str) -> list[str]:
    """The attributes the action's live rules read: per-unit amounts and conditions."""
    names: list[str] = []
    for rule in compiled_program().rules_by_action.get(action_code, ()):
        for name in [rule.unit_attribute, *(c.attribute for c in rule.conditions)]:
            if name and name not in names:
                names.append(name)
    return names


@admin.register(EarningRule)
class EarningRuleAdmin(SimpleHistoryAdmin):
    change_list_template = "admin/loyalty/earningrule/change_list.html"
    list_display = [
        "code",
        "action",
        "priority",
        "is_active",
        "stop_further_rules",
        "growth_per_occurrence",
        "points_per_occurrence",
        "points_per_unit",
        "valid_from",
        "valid_until",
        "latest_version",
    ]
    list_filter = ["is_active", "action"]
    search_fields = ["code", "name", "action__code"]
    list_select_related = ["action"]
    inlines = [RuleConditionInline, RuleCapInline, RuleVersionInline]
    fieldsets = [
        (
            None,
            {"fields": ["action", "code", "name", "is_active", "priority", "stop_further_rules"]},
        ),
        (_("Per occurrence"), {"fields": ["growth_per_occurrence", "points_per_occurrence"]}),
        (
            _("Per unit of an attribute"),
            {
                "fields": [
                    "unit_attribute",
                    "unit_size",
                    "growth_per_unit",
                    "points_per_unit",
                    "rounding",
                ]
            },
        ),
        (
            _("Limits and campaigns"),
            {
                "fields": [
                    "apply_tier_multipliers",
                    "cooldown_seconds",
                    "valid_from",
                    "valid_until",
                    "new_members_within_days",
                ]
            },
        ),
        (
            _("Points: hold and expiry"),
            {
                "fields": [
                    "hold_days",
                    "points_expiry",
                    "points_expiry_n",
                    "points_expiry_date",
                ]
            },
        ),
    ]

    @admin.display(description=_("version"))
    def latest_version(self, rule: EarningRule) -> int | None:
        latest = rule.versions.order_by("-version").first()
        return latest.version if latest else None

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        version = earning_rule_publish(rule=form.instance, actor=request.user)
        self.message_user(request, f"{form.instance.code} is now at version {version.version}.")

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        return [path("preview/", preview, name="loyalty_earningrule_preview"), *super().get_urls()]

    def preview_view(self, request):
        """What would this event earn? A dry run through the real engine; nothing is stored."""
        # Choosing the action (a GET, or a POST's chosen action) brings its attribute fields.
        action_code = (request.POST or request.GET).get("action") or None
        submitted = request.method == "POST" and "preview" in request.POST
        form = EventPreviewForm(
            request.POST if submitted else None,
            action_code=action_code,
            initial={
                "action": action_code,
                "external_id": (request.POST or request.GET).get("external_id", ""),
            },
        )
        outcome = None
        if submitted and form.is_valid():
            data = form.cleaned_data
            event = EventInput(
                external_id=data["external_id"],
                action=data["action"].code,
                idempotency_key="admin-preview",
                occurred_at=data["occurred_at"],
                attributes=form.attributes(),
            )
            try:
                outcome = record_event(client=None, event=event, dry_run=True).as_dict()
            except DomainError as error:
                messages.error(request, f"{error.code}: {error.message}")
        return admin_page(
            self,
            request,
            "admin/loyalty/preview.html",
            title=_("What would this event earn?"),
            form=form,
            outcome=outcome,
            reason=Event.Reason(outcome["reason"]).label if outcome and outcome["reason"] else "",
            skipped=[
                {**skip, "reason": Event.Reason(skip["reason"]).label}
                for skip in (outcome or {}).get("skipped", ())
            ],
            outcome_json=json.dumps(outcome, indent=2, cls=DjangoJSONEncoder) if outcome else "",
        )


class PrivilegeInline(admin.TabularInline):
    model = Privilege
    extra = 0


@admin.register(Tier)
class TierAdmin(SimpleHistoryAdmin):
    list_display = [
        "position",
        "code",
        "name",
        "growth_threshold",
        "window",
        "window_days",
        "grace_days",
        "member_count",
    ]
    list_display_links = ["code"]
    ordering = ["position"]
    inlines = [PrivilegeInline]

    @admin.display(description=_("members"))
    def member_count(self, tier: Tier) -> int:
        return MemberStanding.objects.filter(tier=tier).count()

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        program_changed()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        program_changed()


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
