from __future__ import annotations

from django.db.models import QuerySet

from audit.models import AuditEntry


def audit_entries_list() -> QuerySet[AuditEntry]:
    """Newest first."""
    return AuditEntry.objects.order_by("-at", "-id")
