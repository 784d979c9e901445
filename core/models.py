"""Shared models: the append-only, hash-chained audit log."""

from __future__ import annotations

from django.db import models

from core.choices import AuditAction, AuthMethod


class AppendOnlyError(Exception):
    """Raised on any attempt to change or remove an audit entry."""


class AuditEntryQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError("Audit entries are append-only: update refused.")

    def delete(self):
        raise AppendOnlyError("Audit entries are append-only: delete refused.")


class AuditEntry(models.Model):
    """One audited change. `hash` covers `prev_hash` and this entry's content, so
    editing or deleting any entry breaks the chain (see core.audit.verify_chain)."""

    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    at = models.DateTimeField(editable=False, db_index=True)
    actor_id = models.BigIntegerField(null=True, blank=True, editable=False)
    actor_username = models.CharField(max_length=150, blank=True, editable=False)
    auth_method = models.CharField(max_length=16, choices=AuthMethod.choices, editable=False)
    action = models.CharField(max_length=16, choices=AuditAction.choices, editable=False, db_index=True)
    object_type = models.CharField(max_length=100, editable=False, db_index=True)
    object_id = models.CharField(max_length=64, editable=False, db_index=True)
    object_repr = models.CharField(max_length=200, editable=False)
    before = models.JSONField(null=True, blank=True, editable=False)
    after = models.JSONField(null=True, blank=True, editable=False)
    comment = models.TextField(blank=True, editable=False)
    request_id = models.CharField(max_length=64, blank=True, editable=False)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, unique=True, editable=False)

    objects = AuditEntryQuerySet.as_manager()

    class Meta:
        ordering = ["-seq"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"

    def __str__(self) -> str:
        return f"#{self.seq} {self.action} {self.object_type}:{self.object_id} by {self.actor_username or 'system'}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnlyError("Audit entries are append-only: update refused.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError("Audit entries are append-only: delete refused.")


class AuditChainHead(models.Model):
    """The single row that serialises appends: the last sequence number and hash.

    Appending locks this row (select_for_update), so concurrent writers on
    PostgreSQL cannot fork the chain; on SQLite writes are serialised anyway.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.PositiveBigIntegerField(default=0)
    hash = models.CharField(max_length=64, default="0" * 64)

    def __str__(self) -> str:
        return f"audit head #{self.seq}"


class Secret(models.Model):
    """A named secret (password, DSN, token), stored encrypted (core.secrets).

    Referenced by name from runbooks (`{{ secrets.NAME }}`, `dsn_secret: NAME`); its value
    never reaches logs, events, the audit log or the API. `allowed_hosts` (core.secrets) limits
    where a step that uses it may send requests.
    """

    AUDIT_REDACT = ("ciphertext",)

    name = models.SlugField(max_length=100, unique=True)
    description = models.CharField(max_length=300, blank=True)
    ciphertext = models.TextField(editable=False)
    allowed_hosts = models.JSONField(
        default=list,
        blank=True,
        help_text="Hosts a step may send this secret to (host, host:port, *.example.com); empty: any host.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class NodeClock(models.Model):
    """How far a node's wall clock is from the database server's (core/dbtime.py), measured every minute by
    each worker node. Leases never depend on it (expiry is decided by the database's clock); it is reported
    when a node's skew exceeds the lease margin: its timestamps (steps' start and finish, RTO) are off."""

    node = models.CharField(max_length=200, unique=True, help_text="DRPLAN_NODE_NAME, else the host name.")
    checked_at = models.DateTimeField(help_text="The database server's time at the last measurement.")
    offset_seconds = models.FloatField(default=0.0, help_text="Node clock minus database clock; > 0: node ahead.")
    uncertainty_seconds = models.FloatField(default=0.0, help_text="Half the measurement's round trip.")

    class Meta:
        ordering = ["node"]

    def __str__(self) -> str:
        return f"{self.node}: {self.offset_seconds:+.3f} s"
