import yaml
from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _


class ReadOnlyAdmin(admin.ModelAdmin):
    """Append-only records: operators read and search them, never edit them here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def admin_page(
    model_admin: admin.ModelAdmin, request, template: str, **context
) -> TemplateResponse:
    """A page of our own inside the admin: the site's context (navigation, user), the model's
    options (breadcrumbs), then the page's ``title`` and other values."""
    return TemplateResponse(
        request,
        template,
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.model._meta,
            **context,
        },
    )


class KeyValueField(forms.Field):
    """A JSON object an operator writes as ``key: value`` lines (YAML), one per line, e.g.
    ``url: https://…``; JSON is accepted too, since it is YAML as well. Shown back the same
    way, so the operator never has to write braces and quotes."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def to_python(self, value):
        if value in self.empty_values:
            return {}
        try:
            data = yaml.safe_load(value)
        except yaml.YAMLError as error:
            raise forms.ValidationError(
                _("Write one “key: value” per line (%(error)s).") % {"error": error}
            ) from None
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise forms.ValidationError(_("Write one “key: value” per line."))
        return data

    def prepare_value(self, value):
        if isinstance(value, str):  # a bound value, shown as typed
            return value
        if not value:
            return ""
        return yaml.safe_dump(value, allow_unicode=True, sort_keys=False, default_flow_style=False)

    def has_changed(self, initial, data):
        try:
            return self.to_python(data) != (initial or {})
        except forms.ValidationError:
            return True
