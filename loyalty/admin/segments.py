"""Segments in the admin: conditions composed line by line, the live count and a sample of the
members, and their export as CSV."""

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from import_export import fields, resources
from simple_history.admin import SimpleHistoryAdmin

from accounts.models import Member
from loyalty.models import Segment, SegmentCondition
from loyalty.program.compiled import program_changed
from loyalty.segments.filters import condition_q, segment_members

SAMPLE = 20


class ConditionForm(forms.ModelForm):
    class Meta:
        model = SegmentCondition
        fields = ["field", "attribute", "operator", "value"]

    def clean(self):
        data = super().clean()
        if data.get("field") and data.get("operator"):
            try:
                condition_q(SegmentCondition(**{k: data.get(k) or "" for k in self.Meta.fields}))
            except ValueError as error:
                raise forms.ValidationError(str(error), code="invalid_condition") from error
        return data


class ConditionInline(admin.TabularInline):
    model = SegmentCondition
    form = ConditionForm
    extra = 1


class SegmentMemberResource(resources.ModelResource):
    """A segment's members as the export writes them, a row each."""

    tier = fields.Field(attribute="standing__tier__code", column_name="tier")
    points = fields.Field(attribute="standing__points", column_name="points")
    growth = fields.Field(attribute="standing__growth", column_name="growth")
    state = fields.Field(attribute="activity__state", column_name="state")

    class Meta:
        model = Member
        fields = (
            "external_id",
            "display_name",
            "email",
            "joined_at",
            "tier",
            "points",
            "growth",
            "state",
        )
        export_order = fields


@admin.register(Segment)
class SegmentAdmin(SimpleHistoryAdmin):
    list_display = ["code", "name", "member_count"]
    search_fields = ["code", "name"]
    inlines = [ConditionInline]
    readonly_fields = ["members_now"]

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        program_changed()  # rules that target segments read them from the compiled program

    def delete_model(self, request, obj) -> None:
        super().delete_model(request, obj)
        program_changed()

    def get_urls(self):
        export = self.admin_site.admin_view(self.export_view)
        return [
            path("<int:segment_id>/members.csv", export, name="loyalty_segment_export"),
            *super().get_urls(),
        ]

    @admin.display(description=_("members"))
    def member_count(self, segment: Segment) -> int:
        return segment_members(segment).count()

    @admin.display(description=_("members now"))
    def members_now(self, segment: Segment) -> str:
        if segment.pk is None:
            return "–"
        members = segment_members(segment)
        sample = members.order_by("-id")[:SAMPLE]
        rows = format_html_join(
            "",
            '<li><a href="{}">{}</a></li>',
            ((reverse("admin:accounts_member_change", args=[m.pk]), m.external_id) for m in sample),
        )
        return format_html(
            '<strong id="segment-count">{}</strong> · <a href="{}">{}</a><ul id="segment-sample">{}</ul>',
            members.count(),
            reverse("admin:loyalty_segment_export", args=[segment.pk]),
            _("Export as CSV"),
            rows,
        )

    def export_view(self, request, segment_id: int):
        if not self.has_view_permission(request):
            raise PermissionDenied
        segment = get_object_or_404(Segment, pk=segment_id)
        members = (
            segment_members(segment).select_related("standing__tier", "activity").order_by("id")
        )
        dataset = SegmentMemberResource().export(queryset=members)
        response = HttpResponse(dataset.csv, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="segment-{segment.code}.csv"'
        return response
