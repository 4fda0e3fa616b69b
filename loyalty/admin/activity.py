"""Admin for member activity, gifts and webhooks."""

from django import forms
from django.contrib import admin, messages
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from loyalty.activity.webhooks import webhook_deliver, webhook_replay
from loyalty.admin.base import ReadOnlyAdmin
from loyalty.models import (
    ActivityTransition,
    ChurnRisk,
    Gift,
    GiftGrant,
    KeyAction,
    MemberActivity,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
)
from loyalty.outbox import EVENT_TYPES
from loyalty.program.compiled import program_changed


@admin.register(KeyAction)
class KeyActionAdmin(admin.ModelAdmin):
    """Each change is a new dated definition; the latest in force applies."""

    list_display = ["action", "min_per_day", "effective_from", "created_by", "created_at"]
    readonly_fields = ["created_by", "created_at"]

    def has_change_permission(self, request, obj=None) -> bool:
        return obj is None

    def save_model(self, request, obj, form, change) -> None:
        obj.created_by = request.user
        super().save_model(request, obj, form, change)
        program_changed()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        program_changed()

    def delete_queryset(self, request, queryset) -> None:
        super().delete_queryset(request, queryset)
        program_changed()


@admin.register(ChurnRisk)
class ChurnRiskAdmin(ReadOnlyAdmin):
    """Members flagged by declining key actions (docs/campaigns.md): a segment condition too."""

    list_display = ["member", "indicator", "baseline", "recent", "flagged_at"]
    list_select_related = ["member"]
    search_fields = ["member__external_id"]
    date_hierarchy = "flagged_at"


@admin.register(MemberActivity)
class MemberActivityAdmin(ReadOnlyAdmin):
    list_display = ["member", "state", "since", "last_key_day"]
    list_filter = ["state"]
    search_fields = ["member__external_id"]
    list_select_related = ["member"]
    show_full_result_count = False


@admin.register(ActivityTransition)
class ActivityTransitionAdmin(ReadOnlyAdmin):
    list_display = ["member", "from_state", "to_state", "at"]
    list_filter = ["to_state", "from_state"]
    search_fields = ["member__external_id"]
    list_select_related = ["member"]
    date_hierarchy = "at"


@admin.register(Gift)
class GiftAdmin(admin.ModelAdmin):
    list_display = ["kind", "points", "growth", "badge", "is_active"]


@admin.register(GiftGrant)
class GiftGrantAdmin(ReadOnlyAdmin):
    list_display = ["member", "kind", "occasion", "points", "growth", "created_at"]
    list_filter = ["kind"]
    search_fields = ["member__external_id"]


class EndpointForm(forms.ModelForm):
    event_types = forms.MultipleChoiceField(
        choices=[(code, format_lazy("{} — {}", code, text)) for code, text in EVENT_TYPES.items()],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_("None checked: every type."),
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "event_types", "is_active"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = EndpointForm
    list_display = ["name", "url", "is_active", "consecutive_failures", "disabled_reason"]
    list_filter = ["is_active"]
    readonly_fields = ["consecutive_failures", "disabled_reason", "created_at"]
    actions = ["enable"]

    def save_model(self, request, obj, form, change) -> None:
        if change and obj.is_active and "is_active" in form.changed_data:
            obj.consecutive_failures, obj.disabled_reason = 0, ""
        super().save_model(request, obj, form, change)
        if not change:
            messages.warning(
                request,
                f"The signing secret of {obj.name} is {obj.secret} — copy it now, it is not shown again.",
            )

    @admin.action(description=_("Enable again (reset the failure count)"))
    def enable(self, request, queryset) -> None:
        queryset.update(is_active=True, consecutive_failures=0, disabled_reason="")


class AttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ["at", "status_code", "error", "duration_ms"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(ReadOnlyAdmin):
    """The delivery log: every attempt, with replay."""

    list_display = [
        "id",
        "event_type",
        "endpoint",
        "status",
        "attempts",
        "last_status_code",
        "next_attempt_at",
        "created_at",
    ]
    list_filter = ["status", "endpoint", "event__type"]
    list_select_related = ["event", "endpoint"]
    inlines = [AttemptInline]
    actions = ["replay", "retry_now"]

    @admin.display(description=_("type"))
    def event_type(self, delivery: WebhookDelivery) -> str:
        return delivery.event.type

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.is_staff

    @admin.action(description=_("Replay (send again as a new delivery)"))
    def replay(self, request, queryset) -> None:
        for delivery in queryset:
            webhook_replay(delivery=delivery)
        self.message_user(request, f"Replaying {queryset.count()} delivery(ies).")

    @admin.action(description=_("Retry pending deliveries now"))
    def retry_now(self, request, queryset) -> None:
        for delivery in queryset.filter(status=WebhookDelivery.Status.PENDING):
            webhook_deliver(delivery_id=delivery.pk)
        self.message_user(request, "Retried.")
