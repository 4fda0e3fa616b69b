import yaml
from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from loyalty.models.content import TRANSLATED_FIELDS, other_languages


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


class TranslationsWidget(forms.MultiWidget):
    """One input per other language and translated field, each with its own label."""

    template_name = "loyalty/widgets/translations.html"

    def __init__(self, slots: list[tuple[str, str, str]]):
        self.slots = slots  # (language code, field, label)
        super().__init__(
            [
                forms.Textarea(attrs={"rows": 2, "cols": 60})
                if field == "description"
                else forms.TextInput(attrs={"size": 60})
                for _code, field, _label in slots
            ]
        )

    def decompress(self, value):
        value = value or {}
        return [(value.get(code) or {}).get(field, "") for code, field, _label in self.slots]

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        for subwidget, (_code, _field, label) in zip(
            context["widget"]["subwidgets"], self.slots, strict=True
        ):
            subwidget["label"] = label
        return context


class TranslationsField(forms.MultiValueField):
    """A content model's ``translations``: its name and description in each language but the
    program's own (``loyalty.models.content``), blank where not translated."""

    def __init__(self, *, model, **kwargs):
        fields = [f for f in TRANSLATED_FIELDS if any(x.name == f for x in model._meta.fields)]
        self.slots = [
            (code, field, f"{capfirst(model._meta.get_field(field).verbose_name)} ({language})")
            for code, language in other_languages()
            for field in fields
        ]
        super().__init__(
            fields=[forms.CharField(required=False) for _ in self.slots],
            require_all_fields=False,
            required=False,
            widget=TranslationsWidget(self.slots),
            **kwargs,
        )

    def compress(self, data_list):
        translations: dict[str, dict[str, str]] = {}
        for (code, field, _label), value in zip(self.slots, data_list or [], strict=False):
            if value and value.strip():
                translations.setdefault(code, {})[field] = value.strip()
        return translations


class TranslatedContentAdmin(admin.ModelAdmin):
    """Edits a content model's translations field by field and language, after its fields."""

    def get_fields(self, request, obj=None):
        fields = [f for f in super().get_fields(request, obj) if f != "translations"]
        return [*fields, "translations"]

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "translations":
            return TranslationsField(
                model=db_field.model,
                label=capfirst(db_field.verbose_name),
                help_text=db_field.help_text,
            )
        return super().formfield_for_dbfield(db_field, request, **kwargs)
