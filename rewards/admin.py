"""Operators curate the catalog and pools and follow redemptions; actions call the services."""

from django import forms
from django.contrib import admin, messages
from django.db.models import Count, Q
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext, pgettext
from simple_history.admin import SimpleHistoryAdmin

from core.errors import DomainError
from loyalty.admin.base import KeyValueField, TranslatedContentAdmin, admin_page
from rewards.models import CouponPool, Redemption, Reward
from rewards.services.pools import parse_codes, pool_add_codes, pool_generate
from rewards.services.redemptions import redemption_advance, redemption_cancel


class PoolCodesForm(forms.Form):
    file = forms.FileField(
        required=False, help_text=_("One code per line, or a CSV whose first column is the code.")
    )
    pattern = forms.CharField(
        required=False, initial="SHOP-XXXX-XXXX", help_text=_("Each X becomes a random character.")
    )
    count = forms.IntegerField(required=False, min_value=1, max_value=100_000)


@admin.register(CouponPool)
class CouponPoolAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "total_codes", "free_codes", "stock_flag"]
    search_fields = ["code", "name"]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                total=Count("codes"), free=Count("codes", filter=Q(codes__redemption__isnull=True))
            )
        )

    @admin.display(description=_("codes"), ordering="total")
    def total_codes(self, pool) -> int:
        return pool.total

    @admin.display(description=_("free"), ordering="free")
    def free_codes(self, pool) -> int:
        return pool.free

    @admin.display(description=_("stock"))
    def stock_flag(self, pool) -> str:
        if pool.free == 0:
            return format_html(
                '<strong style="color:#ba2121">{}</strong>', pgettext("stock", "empty")
            )
        if pool.free < pool.low_stock_threshold:
            return format_html(
                '<strong style="color:#c77c00">{}</strong>', pgettext("stock", "low")
            )
        return pgettext("stock", "ok")

    def get_urls(self):
        view = self.admin_site.admin_view(self.codes_view)
        return [
            path("<int:pool_id>/codes/", view, name="rewards_couponpool_codes"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "codes_url": reverse("admin:rewards_couponpool_codes", args=[object_id]),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def codes_view(self, request, pool_id: int):
        """Upload codes from a file or generate them by a pattern."""
        pool = CouponPool.objects.get(pk=pool_id)
        form = PoolCodesForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            try:
                if data["file"]:
                    report = pool_add_codes(
                        pool=pool, codes=parse_codes(data["file"].read().decode("utf-8-sig"))
                    )
                elif data["count"]:
                    report = pool_generate(pool=pool, pattern=data["pattern"], count=data["count"])
                else:
                    raise DomainError(_("Upload a file, or give a pattern and a count."))
                self.message_user(request, f"{pool.name}: {report}.")
            except DomainError as error:
                self.message_user(request, error.message, level=messages.ERROR)
        return admin_page(
            self,
            request,
            "admin/rewards/pool_codes.html",
            title=f"Codes of {pool.name}",
            form=form,
            pool=pool,
            free=pool.codes.filter(redemption__isnull=True).count(),
        )


@admin.register(Reward)
class RewardAdmin(TranslatedContentAdmin, SimpleHistoryAdmin):
    list_display = [
        "code",
        "name",
        "kind",
        "cost_points",
        "stock",
        "redeemed_count",
        "min_tier",
        "is_active",
        "available_until",
    ]
    list_filter = ["kind", "is_active", "min_tier"]
    search_fields = ["code", "name"]
    filter_horizontal = ["exclusive_tiers"]
    readonly_fields = ["redeemed_count"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "payload":
            return KeyValueField(
                required=False,
                help_text=_(
                    "Handed to the member, one “key: value” per line, e.g. "
                    "“url: https://example.com/download” or “days: 30”."
                ),
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)


@admin.register(Redemption)
class RedemptionAdmin(admin.ModelAdmin):
    list_display = ["id", "member", "reward", "status", "points_cost", "coupon_code", "created_at"]
    list_filter = ["status", "reward"]
    search_fields = ["member__external_id", "coupon_code", "idempotency_key"]
    list_select_related = ["member", "reward"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Redemption._meta.fields]
    actions = ["mark_shipped", "mark_delivered", "cancel"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def _each(self, request, queryset, step, done) -> None:
        ok = 0
        for redemption in queryset:
            try:
                step(redemption)
                ok += 1
            except DomainError as error:
                self.message_user(
                    request, f"#{redemption.pk}: {error.message}", level=messages.WARNING
                )
        self.message_user(request, done(ok))

    @admin.action(description=_("Mark as shipped"))
    def mark_shipped(self, request, queryset) -> None:
        self._each(
            request,
            queryset,
            lambda r: redemption_advance(redemption_id=r.pk, to="shipped"),
            lambda n: (
                ngettext(
                    "%(count)d redemption marked as shipped.",
                    "%(count)d redemptions marked as shipped.",
                    n,
                )
                % {"count": n}
            ),
        )

    @admin.action(description=_("Mark as delivered"))
    def mark_delivered(self, request, queryset) -> None:
        self._each(
            request,
            queryset,
            lambda r: redemption_advance(redemption_id=r.pk, to="delivered"),
            lambda n: (
                ngettext(
                    "%(count)d redemption marked as delivered.",
                    "%(count)d redemptions marked as delivered.",
                    n,
                )
                % {"count": n}
            ),
        )

    @admin.action(description=_("Cancel and refund the points"))
    def cancel(self, request, queryset) -> None:
        self._each(
            request,
            queryset,
            lambda r: redemption_cancel(redemption_id=r.pk, any_client=True),
            lambda n: (
                ngettext(
                    "%(count)d redemption cancelled and refunded.",
                    "%(count)d redemptions cancelled and refunded.",
                    n,
                )
                % {"count": n}
            ),
        )


# The referral pages are registered with their room.
from rewards.referrals import admin as referral_admin  # noqa: E402,F401
