from __future__ import annotations

from rest_framework import serializers

from audit.models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    """One audit entry, as listed by GET /api/v1/audit."""

    user = serializers.SerializerMethodField(help_text="The user's id, if a user acted.")
    details = serializers.DictField(help_text="The inputs that matter; never secrets.")

    class Meta:
        model = AuditEntry
        fields = [
            "id",
            "at",
            "actor",
            "user",
            "via",
            "action",
            "target",
            "details",
            "outcome",
            "code",
        ]
        read_only_fields = fields

    def get_user(self, entry: AuditEntry) -> int | None:
        return entry.user_id
