from django.contrib import admin


class ReadOnlyAdmin(admin.ModelAdmin):
    """Append-only records: operators read and search them, never edit them here."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
