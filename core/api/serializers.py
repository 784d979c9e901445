from __future__ import annotations

from rest_framework import serializers

from core.api.strict import StrictSerializer
from core.models import AuditEntry, Secret


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


class SecretSerializer(serializers.ModelSerializer):
    """A secret as the API shows it: never its value or ciphertext."""

    class Meta:
        model = Secret
        fields = ("name", "description", "created_at", "updated_at")
        read_only_fields = fields


class SecretWriteSerializer(StrictSerializer):
    """Input of PUT/PATCH: the value and/or description. `value` is write-only and kept exactly (no
    whitespace trimming). A secret cannot be renamed: a `name` other than the secret's own is refused."""

    value = serializers.CharField(write_only=True, trim_whitespace=False, max_length=16_384)
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)

    def validate(self, attrs: dict) -> dict:
        sent = self.initial_data.get("name") if isinstance(self.initial_data, dict) else None
        if self.instance is not None and sent is not None and sent != self.instance.name:
            raise serializers.ValidationError(
                {"name": ["A secret cannot be renamed; create a new one and delete this one."]}
            )
        return attrs


class SecretCreateSerializer(SecretWriteSerializer):
    """Input of POST: a new secret's name, value and description."""

    name = serializers.SlugField(max_length=100)
