from django import forms
from django.contrib import admin, messages
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import ApiClient, Member
from accounts.scopes import SCOPE_CHOICES
from accounts.services import api_client_create, api_client_revoke, api_client_rotate_key


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["external_id", "display_name", "email", "joined_at", "leaderboard_opt_out"]
    list_filter = ["leaderboard_opt_out"]
    search_fields = ["external_id", "display_name", "email"]
    date_hierarchy = "joined_at"
    readonly_fields = ["created_at", "updated_at"]
    raw_id_fields = ["user"]


class ApiClientForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=SCOPE_CHOICES, widget=forms.CheckboxSelectMultiple, required=False
    )

    class Meta:
        model = ApiClient
        fields = ["name", "scopes", "is_active", "rate_limit_per_minute"]


def _show_key_once(request, client: ApiClient, key: str) -> None:
    messages.warning(
        request,
        f"The key of {client.name} is {key} — copy it now, it will not be shown again.",
    )


@admin.register(ApiClient)
class ApiClientAdmin(admin.ModelAdmin):
    form = ApiClientForm
    list_display = [
        "name",
        "masked_key",
        "scope_list",
        "rate_limit_per_minute",
        "is_active",
        "last_used_at",
        "created_at",
    ]
    list_filter = ["is_active"]
    search_fields = ["name", "key_prefix"]
    readonly_fields = ["masked_key", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke", "rotate_key"]

    @admin.display(description=_("key"))
    def masked_key(self, client: ApiClient) -> str:
        return f"lk_{client.key_prefix}_…" if client.key_prefix else "—"

    @admin.display(description=_("scopes"))
    def scope_list(self, client: ApiClient) -> str:
        return ", ".join(client.scopes)

    def save_model(self, request, obj: ApiClient, form, change: bool) -> None:
        if change:
            if not obj.is_active and obj.revoked_at is None:
                obj.revoked_at = timezone.now()
            super().save_model(request, obj, form, change)
            return
        client, key = api_client_create(
            name=obj.name,
            scopes=form.cleaned_data["scopes"],
            rate_limit_per_minute=form.cleaned_data.get("rate_limit_per_minute"),
        )
        obj.pk = client.pk
        obj.key_prefix = client.key_prefix
        _show_key_once(request, client, key)

    @admin.action(description=_("Revoke the selected clients' keys"))
    def revoke(self, request, queryset) -> None:
        for client in queryset:
            api_client_revoke(client=client)
        self.message_user(request, f"Revoked {queryset.count()} client(s).")

    @admin.action(description=_("Issue a new key (the old one stops working)"))
    def rotate_key(self, request, queryset) -> None:
        for client in queryset:
            _show_key_once(request, client, api_client_rotate_key(client=client))
