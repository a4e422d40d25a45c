from __future__ import annotations

from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import generics
from rest_framework.settings import api_settings

from audit.api.filters import AuditFilterBackend
from audit.api.serializers import AuditEntrySerializer
from audit.selectors import audit_entries_list


@extend_schema_view(get=extend_schema(summary="The audit log: who changed what, newest first"))
class AuditListView(generics.ListAPIView):
    """Every state change a person, key, strategy or the system made (read scope)."""

    serializer_class = AuditEntrySerializer
    filter_backends = [*api_settings.DEFAULT_FILTER_BACKENDS, AuditFilterBackend]

    def get_queryset(self):
        return audit_entries_list()
