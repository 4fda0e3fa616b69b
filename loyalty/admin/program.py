"""The operators' admin of the program: settings, actions, earning rules, tiers and
privileges. Every change goes through the same services as the API."""

import json

from django import forms
from django.contrib import admin, messages
from django.core.serializers.json import DjangoJSONEncoder
from django.urls import path
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from core.errors import DomainError
from loyalty.admin.base import ReadOnlyAdmin, TranslatedContentAdmin, admin_page
from loyalty.engine.events import EventInput, record_event
from loyalty.ledger.reconciliation import liability_report
from loyalty.models import (
    Action,
    EarningRule,
    EarningRuleVersion,
    Event,
    MemberStanding,
    Privilege,
    Program,
    RuleCap,
    RuleCondition,
    Tier,
    TierChange,
)
from loyalty.program.compiled import compiled_program, earning_rule_publish, program_changed
from loyalty.selectors import program_changes


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
    list_display = ["code", "name", "is_active", "in_member_center", "rule_count"]
    list_filter = ["is_active", "in_member_center"]
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
class TierAdmin(TranslatedContentAdmin, SimpleHistoryAdmin):
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


@admin.register(TierChange)
class TierChangeAdmin(ReadOnlyAdmin):
    """Every change of a member's tier: what the dashboard's upgrades and downgrades count."""

    list_display = ["member", "from_tier", "to_tier", "reason", "qualifying_growth", "created_at"]
    list_filter = ["reason", "to_tier", "created_at"]
    list_select_related = ["member", "from_tier", "to_tier"]
    search_fields = ["member__external_id"]
    date_hierarchy = "created_at"
