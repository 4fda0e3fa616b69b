"""Program drafts and versions in the admin: start a draft from the live program (or restore a
version), edit it as a program file, read its difference from the live program, and publish it
now or at a set time. Publishing needs the right to change the program settings."""

import yaml
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from core.errors import InvalidInput
from loyalty.admin.base import ReadOnlyAdmin
from loyalty.models import ProgramDraft, ProgramVersion
from loyalty.simulation.drafts import (
    as_yaml,
    draft_diff,
    draft_new,
    draft_problems,
    draft_publish,
    version_restore,
)

PUBLISH = "loyalty.change_program"


class DraftForm(forms.ModelForm):
    text = forms.CharField(
        label=_("program file"),
        widget=forms.Textarea(attrs={"rows": 40, "cols": 110, "spellcheck": "false"}),
        help_text=_(
            "The whole program in the program file's format (YAML). A section's items that "
            "this file leaves out are switched off when it is published."
        ),
    )

    class Meta:
        model = ProgramDraft
        fields = ["name", "publish_at"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["text"] = as_yaml(self.instance.definition)

    def clean_text(self):
        try:
            definition = yaml.safe_load(self.cleaned_data["text"])
        except yaml.YAMLError as error:
            raise forms.ValidationError(
                _("Not readable as YAML: %(error)s"), code="not_yaml", params={"error": error}
            ) from error
        if problems := draft_problems(definition):
            raise forms.ValidationError(
                [forms.ValidationError(line, code="invalid_program") for line in problems]
            )
        return definition


@admin.register(ProgramDraft)
class ProgramDraftAdmin(admin.ModelAdmin):
    form = DraftForm
    list_display = ["name", "status", "based_on", "publish_at", "published_as", "updated_at"]
    list_filter = ["status"]
    readonly_fields = ["status", "based_on", "published_as", "error", "difference"]
    actions = ["publish_now"]

    class Media:
        css = {"all": ["loyalty/drafts.css"]}

    def get_fields(self, request, obj=None):
        if obj is not None and obj.status == ProgramDraft.Status.PUBLISHED:
            return ["name", "status", "based_on", "published_as", "difference"]
        return ["name", "publish_at", "status", "based_on", "error", "text", "difference"]

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.status == ProgramDraft.Status.PUBLISHED:
            return False
        return super().has_change_permission(request, obj)

    def get_urls(self):
        return [
            path(
                "new-from-live/",
                self.admin_site.admin_view(self.new_from_live),
                name="loyalty_programdraft_from_live",
            ),
        ] + super().get_urls()

    def new_from_live(self, request):
        if request.method != "POST" or not self.has_add_permission(request):
            raise PermissionDenied
        draft = draft_new(name=gettext("Draft of the live program"), actor=request.user)
        return HttpResponseRedirect(reverse("admin:loyalty_programdraft_change", args=[draft.pk]))

    def save_model(self, request, obj, form, change) -> None:
        obj.definition = form.cleaned_data["text"]
        if not change:
            obj.created_by = request.user
        scheduled = obj.publish_at is not None
        obj.status = ProgramDraft.Status.SCHEDULED if scheduled else ProgramDraft.Status.DRAFT
        obj.error = ""
        if scheduled and not request.user.has_perm(PUBLISH):
            raise PermissionDenied
        super().save_model(request, obj, form, change)

    @admin.display(description=_("difference from the live program"))
    def difference(self, draft: ProgramDraft) -> str:
        if not draft.pk:
            return "–"
        lines = draft_diff(draft)
        if not lines:
            return gettext("The same as the live program.")
        return format_html(
            '<pre class="program-diff">{}</pre>',
            format_html_join("\n", '<span class="diff-{}">{}</span>', lines),
        )

    @admin.action(description=_("Publish now"))
    def publish_now(self, request, queryset) -> None:
        if not request.user.has_perm(PUBLISH):
            raise PermissionDenied
        for draft in queryset.exclude(status=ProgramDraft.Status.PUBLISHED).order_by("pk"):
            try:  # a draft that does not load is refused by the publish itself, whole
                version = draft_publish(draft, actor=request.user)
            except InvalidInput as invalid:
                self.message_user(
                    request,
                    gettext("%(draft)s was not published: %(problems)s")
                    % {"draft": draft, "problems": "; ".join(invalid.details or [invalid.message])},
                    messages.ERROR,
                )
                continue
            self.message_user(
                request,
                gettext("%(draft)s is live as version %(number)s.")
                % {"draft": draft, "number": version.number},
                messages.SUCCESS,
            )


@admin.register(ProgramVersion)
class ProgramVersionAdmin(ReadOnlyAdmin):
    list_display = ["number", "published_at", "published_by", "note"]
    fields = ["number", "published_at", "published_by", "note", "program_file"]
    readonly_fields = fields
    actions = ["restore"]

    class Media:
        css = {"all": ["loyalty/drafts.css"]}

    @admin.display(description=_("program file"))
    def program_file(self, version: ProgramVersion) -> str:
        return format_html('<pre class="program-file">{}</pre>', as_yaml(version.definition))

    @admin.action(description=_("Restore as a new draft"), permissions=["restore"])
    def restore(self, request, queryset) -> None:
        for version in queryset:
            draft = version_restore(version, actor=request.user)
            self.message_user(
                request,
                gettext("Draft %(draft)s holds version %(number)s; publish it to bring it back.")
                % {"draft": draft, "number": version.number},
                messages.SUCCESS,
            )

    def has_restore_permission(self, request) -> bool:
        return request.user.has_perm("loyalty.add_programdraft")
