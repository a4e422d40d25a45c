"""Research runs in admin: read-only (they are made by the API, the pages and the commands),
with a link to each run's page and a cancel action."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html

from strategies.research.models import ResearchRun
from trading.exceptions import DomainError


@admin.register(ResearchRun)
class ResearchRunAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "kind",
        "plugin",
        "status",
        "progress_pct",
        "requested_by",
        "created_at",
        "page",
    ]
    list_filter = ["status", "kind", "plugin"]
    search_fields = ["plugin", "requested_by"]
    actions = ["cancel"]
    exclude = ["result"]
    readonly_fields = [f.name for f in ResearchRun._meta.fields if f.name != "result"] + ["page"]

    @admin.display(description="progress")
    def progress_pct(self, run: ResearchRun) -> str:
        return f"{run.progress * 100:.0f}%"

    @admin.display(description="result")
    def page(self, run: ResearchRun) -> str:
        return format_html('<a href="{}">open</a>', reverse("research-run-page", args=[run.pk]))

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.action(description="Cancel", permissions=["view"])
    def cancel(self, request, queryset):
        from strategies.research.services import Principal, run_cancel

        for run in queryset:
            try:
                run_cancel(run=run, principal=Principal(user=request.user))
            except DomainError as exc:
                self.message_user(request, f"#{run.pk}: {exc.message}", messages.WARNING)
            else:
                self.message_user(request, f"#{run.pk}: cancel requested", messages.SUCCESS)
