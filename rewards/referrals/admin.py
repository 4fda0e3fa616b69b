"""Operators set the referral program, review held referrals in bulk, see a member's tree and
the top inviters. Actions call the services."""

from django import forms
from django.contrib import admin, messages
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.admin import SimpleHistoryAdmin

from accounts.models import Member
from loyalty.admin.base import admin_page
from rewards.referrals.models import InviterTally, Referral, ReferralProgram
from rewards.referrals.program import referral_settings_changed
from rewards.referrals.review import referrals_approve, referrals_reject
from rewards.referrals.selectors import referral_tree


class ReferralProgramForm(forms.ModelForm):
    class Meta:
        model = ReferralProgram
        fields = ReferralProgram.SETTINGS


@admin.register(ReferralProgram)
class ReferralProgramAdmin(SimpleHistoryAdmin):
    form = ReferralProgramForm
    list_display = ["__str__", "is_active", "qualifying_action", "min_amount", "qualify_days"]
    fieldsets = [
        (None, {"fields": ["is_active", "link_template"]}),
        (_("Attribution"), {"fields": ["attribution_days"]}),
        (
            _("Qualification"),
            {"fields": ["qualifying_action", "amount_attribute", "min_amount", "qualify_days"]},
        ),
        (
            _("Fraud checks"),
            {
                "fields": ["signal_attributes", "burst_limit", "burst_hours"],
                "description": _(
                    "Referrals that match are held for review, not refused. What both members "
                    "earn is set by the earning rules of “referral_qualified” (the inviter) and "
                    "“referred_welcome” (the invited member)."
                ),
            },
        ),
    ]

    def has_add_permission(self, request) -> bool:
        return not ReferralProgram.objects.exists()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj, form, change) -> None:
        obj.pk = 1
        super().save_model(request, obj, form, change)
        referral_settings_changed()


def _tree_link(member: Member) -> str:
    url = reverse("admin:rewards_referral_tree", args=[member.pk])
    return format_html('<a href="{}">{}</a>', url, member.external_id)


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "invitee_link",
        "inviter_link",
        "state",
        "hold_reason",
        "joined_at",
        "qualified_at",
        "friend_number",
        "rewarded",
    ]
    list_filter = ["state", "hold_reason", "joined_at"]
    search_fields = ["invitee__external_id", "inviter__external_id", "code"]
    list_select_related = ["invitee", "inviter"]
    date_hierarchy = "joined_at"
    readonly_fields = [f.name for f in Referral._meta.fields]
    actions = ["approve", "reject"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("invited member"), ordering="invitee__external_id")
    def invitee_link(self, referral: Referral) -> str:
        return _tree_link(referral.invitee)

    @admin.display(description=_("inviter"), ordering="inviter__external_id")
    def inviter_link(self, referral: Referral) -> str:
        return _tree_link(referral.inviter)

    @admin.display(description=_("rewarded"), boolean=True)
    def rewarded(self, referral: Referral) -> bool:
        return referral.rewarded_at is not None

    def _report(self, request, report, done_message) -> None:
        if report.done:
            self.message_user(request, done_message(len(report.done)))
        if report.skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d referral was not in a state this applies to.",
                    "%(count)d referrals were not in a state this applies to.",
                    len(report.skipped),
                )
                % {"count": len(report.skipped)},
                level=messages.WARNING,
            )

    @admin.action(description=_("Approve the held referrals selected"))
    def approve(self, request, queryset) -> None:
        report = referrals_approve(
            referral_ids=list(queryset.values_list("pk", flat=True)), actor=request.user
        )
        self._report(
            request,
            report,
            lambda n: (
                ngettext("%(count)d referral approved.", "%(count)d referrals approved.", n)
                % {"count": n}
            ),
        )

    @admin.action(description=_("Reject (rewarded ones have their credits taken back)"))
    def reject(self, request, queryset) -> None:
        report = referrals_reject(
            referral_ids=list(queryset.values_list("pk", flat=True)), actor=request.user
        )
        self._report(
            request,
            report,
            lambda n: (
                ngettext("%(count)d referral rejected.", "%(count)d referrals rejected.", n)
                % {"count": n}
            ),
        )

    def get_urls(self):
        tree = self.admin_site.admin_view(self.tree_view)
        return [
            path("tree/<int:member_id>/", tree, name="rewards_referral_tree"),
            *super().get_urls(),
        ]

    def tree_view(self, request, member_id: int):
        """Who invited the member (up the chain) and whom they invited (a few levels down)."""
        member = get_object_or_404(Member, pk=member_id)
        return admin_page(
            self,
            request,
            "admin/rewards/referral_tree.html",
            title=_("Referrals of %(member)s") % {"member": member.external_id},
            tree=referral_tree(member=member),
            tally=InviterTally.objects.filter(member=member).first(),
        )


@admin.register(InviterTally)
class TopInviterAdmin(admin.ModelAdmin):
    """The top inviters: who brought the most friends who qualified."""

    list_display = ["member_link", "qualified", "joined", "conversion"]
    search_fields = ["member__external_id"]
    list_select_related = ["member"]
    ordering = ["-qualified", "-joined"]
    readonly_fields = ["member", "joined", "qualified", "numbered"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("member"), ordering="member__external_id")
    def member_link(self, tally: InviterTally) -> str:
        return _tree_link(tally.member)

    @admin.display(description=_("qualified of joined"))
    def conversion(self, tally: InviterTally) -> str:
        return f"{100 * tally.qualified / tally.joined:.0f} %" if tally.joined else "–"
