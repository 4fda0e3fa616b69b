from django.contrib import admin
from django.template.response import TemplateResponse


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
