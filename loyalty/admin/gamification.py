"""Admin for badges, streaks, quests and leaderboards: editable as data; grant and revoke
badges; who holds a badge; a leaderboard's current standings."""

from django import forms
from django.contrib import admin
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from accounts.models import Member
from core.tasks import queue_after_commit
from loyalty.admin.base import TranslatedContentAdmin, admin_page
from loyalty.gamification.badges import badge_grant, badge_revoke
from loyalty.gamification.leaderboards import leaderboard_view
from loyalty.models import Badge, BadgeAward, Leaderboard, Quest, QuestStep, Streak
from loyalty.program.compiled import program_changed
from loyalty.scores.counting import board_period_start
from loyalty.segments.inflow import usable_in_rules


class ProgramDataAdmin(SimpleHistoryAdmin):
    """Saving any of these changes the program: every process recompiles it."""

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        program_changed()

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        program_changed()


class GrantForm(forms.Form):
    external_ids = forms.CharField(
        widget=forms.Textarea, help_text=_("One member external_id per line.")
    )


@admin.register(Badge)
class BadgeAdmin(TranslatedContentAdmin, ProgramDataAdmin):
    list_display = [
        "code",
        "name",
        "level",
        "criterion",
        "threshold",
        "repeatable",
        "secret",
        "is_active",
        "holders",
    ]
    list_filter = ["criterion", "level", "secret", "is_active"]
    search_fields = ["code", "name"]

    @admin.display(description=_("holders"))
    def holders(self, badge: Badge) -> str:
        url = (
            reverse("admin:loyalty_badgeaward_changelist")
            + f"?badge__id__exact={badge.pk}&revoked_at__isnull=True"
        )
        count = badge.awards.filter(revoked_at__isnull=True).values("member").distinct().count()
        return format_html('<a href="{}">{}</a>', url, count)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        badge_id = form.instance.pk
        # Members who already qualify get the new or changed badge, quietly, in a worker.
        queue_after_commit("loyalty.backfill_badge", badge_id)
        self.message_user(
            request, _("Members who already qualify will receive the badge (back-fill).")
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.grant_view)
        return [
            path("<int:badge_id>/grant/", view, name="loyalty_badge_grant"),
            *super().get_urls(),
        ]

    def grant_view(self, request, badge_id: int):
        """Grant the badge by hand to members listed by external_id."""
        badge = Badge.objects.get(pk=badge_id)
        form = GrantForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            ids = [
                line.strip()
                for line in form.cleaned_data["external_ids"].splitlines()
                if line.strip()
            ]
            members = Member.objects.filter(external_id__in=ids)
            for member in members:
                badge_grant(member_id=member.pk, badge=badge, operator=request.user)
            missing = set(ids) - {m.external_id for m in members}
            self.message_user(
                request,
                f"Granted {badge} to {members.count()} member(s)."
                + (f" Unknown: {', '.join(sorted(missing))}" if missing else ""),
            )
        return admin_page(
            self,
            request,
            "admin/loyalty/form_page.html",
            title=f"Grant {badge}",
            form=form,
        )

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {
            "extra_links": [
                ("Grant by hand", reverse("admin:loyalty_badge_grant", args=[object_id]))
            ]
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **extra})


@admin.register(BadgeAward)
class BadgeAwardAdmin(admin.ModelAdmin):
    """Who holds which badge; revoke by hand."""

    list_display = [
        "badge",
        "member",
        "sequence",
        "awarded_at",
        "backfilled",
        "operator",
        "revoked_at",
    ]
    list_filter = ["badge", "backfilled", ("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["member__external_id", "badge__code"]
    list_select_related = ["badge", "member", "operator"]
    readonly_fields = [f.name for f in BadgeAward._meta.fields]
    actions = ["revoke"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description=_("Revoke the selected awards"))
    def revoke(self, request, queryset) -> None:
        for award in queryset:
            badge_revoke(award=award, reason=f"revoked by {request.user}")
        self.message_user(request, f"Revoked {queryset.count()} award(s).")


@admin.register(Streak)
class StreakAdmin(ProgramDataAdmin):
    list_display = ["code", "name", "action", "is_active"]


class QuestStepInline(admin.TabularInline):
    model = QuestStep
    extra = 1


class QuestForm(forms.ModelForm):
    class Meta:
        model = Quest
        fields = [
            "code",
            "name",
            "description",
            "translations",
            "scope",
            "window_days",
            "segment",
            "reward_points",
            "reward_growth",
            "reward_badge",
            "is_active",
            "position",
        ]

    def clean_segment(self):
        segment = self.cleaned_data.get("segment")
        if segment is not None and not usable_in_rules(
            tuple((c.field, c.attribute, c.operator, c.value) for c in segment.conditions.all())
        ):
            raise forms.ValidationError(
                _(
                    "This segment has a condition the event flow cannot read (badges, quests "
                    "or churn risk); a quest can only be kept for a segment without one."
                ),
                code="segment_not_in_flow",
            )
        return segment


@admin.register(Quest)
class QuestAdmin(TranslatedContentAdmin, ProgramDataAdmin):
    form = QuestForm
    list_display = [
        "code",
        "name",
        "scope",
        "segment",
        "reward_points",
        "reward_growth",
        "reward_badge",
        "is_active",
    ]
    list_filter = ["scope", "is_active", "segment"]
    inlines = [QuestStepInline]


@admin.register(Leaderboard)
class LeaderboardAdmin(ProgramDataAdmin):
    list_display = [
        "code",
        "name",
        "metric",
        "action",
        "period",
        "size",
        "is_active",
        "standings_link",
    ]
    filter_horizontal = ["excluded_members"]
    raw_id_fields = []

    @admin.display(description=_("standings"))
    def standings_link(self, board: Leaderboard) -> str:
        return format_html(
            '<a href="{}">current</a>',
            reverse("admin:loyalty_leaderboard_standings", args=[board.pk]),
        )

    def get_urls(self):
        view = self.admin_site.admin_view(self.standings_view)
        return [
            path("<int:board_id>/standings/", view, name="loyalty_leaderboard_standings"),
            *super().get_urls(),
        ]

    def standings_view(self, request, board_id: int):
        board = Leaderboard.objects.get(pk=board_id)
        view = leaderboard_view(
            board=board, period=board_period_start(board.period, timezone.now()), limit=50
        )
        members = Member.objects.in_bulk([r.member_id for r in view["top"]])
        rows = [(r.rank, members.get(r.member_id), r.score) for r in view["top"]]
        return admin_page(
            self,
            request,
            "admin/loyalty/standings.html",
            title=f"{board} — standings",
            view=view,
            rows=rows,
        )
