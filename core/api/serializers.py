from __future__ import annotations

from django.core.validators import RegexValidator
from rest_framework import serializers

from core.api.strict import StrictSerializer
from core.models import AuditEntry, Secret
from core.secrets import ALLOWED_HOST_PATTERN, MAX_ALLOWED_HOSTS


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
        fields = ("name", "description", "allowed_hosts", "created_at", "updated_at")
        read_only_fields = fields

    allowed_hosts = serializers.ListField(
        child=serializers.CharField(), help_text="Hosts a step may send this secret to; empty: any host."
    )


class SecretWriteSerializer(StrictSerializer):
    """Input of PUT/PATCH: the value, description and/or allowed hosts. `value` is write-only and kept
    exactly (no whitespace trimming); `allowed_hosts` is checked by core.secrets (a malformed entry is a
    400 naming it). A secret cannot be renamed: a `name` other than the secret's own is refused."""

    value = serializers.CharField(write_only=True, trim_whitespace=False, max_length=16_384)
    description = serializers.CharField(max_length=300, required=False, allow_blank=True)
    allowed_hosts = serializers.ListField(
        child=serializers.CharField(
            max_length=300,
            validators=[
                RegexValidator(
                    ALLOWED_HOST_PATTERN,
                    message="%(value)r is not a host (use host, host:port, *.example.com, *.example.com:port, [IPv6])",
                )
            ],
        ),
        required=False,
        max_length=MAX_ALLOWED_HOSTS,
        help_text="host, host:port, *.example.com or *.example.com:port; empty: any host. Omitted: kept.",
    )

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
