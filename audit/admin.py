from __future__ import annotations

from django.contrib import admin

from audit.models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    """Read-only: the log is append-only; no one adds, changes or deletes entries here."""

    list_display = ["at", "actor", "via", "action", "target", "outcome", "code"]
    list_filter = ["via", "outcome", "action"]
    search_fields = ["actor", "action", "target", "code"]
    date_hierarchy = "at"
    readonly_fields = [f.name for f in AuditEntry._meta.fields]
    list_select_related = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
