from __future__ import annotations

from rest_framework import serializers

from core.models import AuditEntry


class AuditEntrySerializer(serializers.ModelSerializer):
    """One audit entry. Secrets were already redacted when the snapshot was taken."""

    class Meta:
        model = AuditEntry
        fields = (
            "seq",
            "at",
            "actor_id",
            "actor_username",
            "auth_method",
            "action",
            "object_type",
            "object_id",
            "object_repr",
            "before",
            "after",
            "comment",
            "request_id",
            "prev_hash",
            "hash",
        )
        read_only_fields = fields
