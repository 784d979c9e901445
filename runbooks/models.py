"""Runbooks as code: versioned documents of steps forming a DAG (`needs`).

A version's rows (parameters, steps, dependencies, approval levels) and fields (category,
application, parallelism …) are the truth; the YAML/JSON document is rendered from them
(runbooks.documents) and its hash stored in `content_hash`. Everything that decides how a
version runs — including which plan failovers compose it (its category and application) —
belongs to the version, so approving a version freezes all of it. Approved versions are
immutable: editing creates a new draft version (runbooks.services).

Frozen versions and their approval decisions are evidence: they are never deleted, neither
directly nor by deleting their runbook (the foreign keys PROTECT; `delete()` on a model or a
queryset refuses frozen versions with FrozenVersionError, 409 in the API).
"""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models, transaction

from core.exceptions import Conflict
from core.validators import validate_natural_key
from runbooks.choices import FROZEN_STATUSES, Decision, ParameterType, RunbookCategory, VersionStatus


class FrozenVersionError(Conflict):
    """A change to a version that is pending approval, approved or superseded (the API answers 409)."""

    default_code = "version_frozen"


def _frozen_status(version_id: int | None) -> str | None:
    """The version's status as stored, if it is frozen (read from the database, not a cached instance)."""
    if version_id is None:
        return None
    status = RunbookVersion.objects.filter(pk=version_id).values_list("status", flat=True).first()
    return status if status in FROZEN_STATUSES else None


class VersionContentMixin:
    """Rows that make up a version's content: refused by save()/delete() once the version is frozen."""

    def _refuse_if_frozen(self, verb: str) -> None:
        status = _frozen_status(self.version_id)  # type: ignore[attr-defined]
        if status:
            raise FrozenVersionError(
                f"Cannot {verb} {self._meta.verbose_name} of a {status} runbook version; "  # type: ignore[attr-defined]
                "create a new draft version instead."
            )

    def save(self, *args, **kwargs):
        self._refuse_if_frozen("change")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        self._refuse_if_frozen("delete")
        return super().delete(*args, **kwargs)


class Runbook(models.Model):
    """A runbook's identity (its slug). Everything else — name, category, application, steps — is per
    version; runbooks.selectors annotates a runbook with its current version's (approved, else latest)."""

    slug = models.SlugField(max_length=100, unique=True, validators=[validate_natural_key])
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["slug"]

    def __str__(self) -> str:
        return self.slug

    def delete(self, *args, **kwargs):
        """Only a runbook whose versions were never submitted can be deleted (its drafts go with it)."""
        with transaction.atomic():
            kept = RunbookVersion.objects.filter(runbook_id=self.pk).exclude(status=VersionStatus.DRAFT)
            decided = RunbookVersion.objects.filter(runbook_id=self.pk, decisions__isnull=False)
            if kept.exists() or decided.exists():
                raise FrozenVersionError(
                    f"Runbook {self.slug!r} has submitted, approved, rejected or superseded versions: they are "
                    "evidence and cannot be deleted. Stop using the runbook instead (e.g. remove its application "
                    "from the plan)."
                )
            RunbookVersion.objects.filter(runbook_id=self.pk).delete()
            return super().delete(*args, **kwargs)


class RunbookVersionQuerySet(models.QuerySet):
    def delete(self):
        """Bulk deletes refuse frozen versions too (model delete() is not called for querysets)."""
        frozen = self.filter(status__in=FROZEN_STATUSES).first()
        if frozen is not None:
            raise FrozenVersionError(f"Runbook version {frozen} is {frozen.status} and cannot be deleted.")
        return super().delete()


class RunbookVersion(models.Model):
    runbook = models.ForeignKey(Runbook, on_delete=models.PROTECT, related_name="versions")
    version = models.CharField(max_length=40, help_text="Semantic version, e.g. 1.2.0.")
    status = models.CharField(max_length=20, choices=VersionStatus.choices, default=VersionStatus.DRAFT, db_index=True)
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=20, choices=RunbookCategory.choices, default=RunbookCategory.FAILOVER)
    application = models.ForeignKey(
        "plans.Application",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="runbook_versions",
        help_text="The application this version recovers; plan failovers compose it by this and the category.",
    )
    description = models.TextField(blank=True)
    parallelism = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Max steps at once; empty = no limit."
    )
    content_hash = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the canonical document.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    contributors = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="+",
        help_text="Everyone who created, edited or submitted this version: none of them may approve it.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    submitted_at = models.DateTimeField(null=True, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)

    objects = RunbookVersionQuerySet.as_manager()

    class Meta:
        ordering = ["runbook", "-created_at"]
        permissions = [("approve_runbookversion", "Can approve or reject runbook versions")]
        constraints = [models.UniqueConstraint(fields=["runbook", "version"], name="unique_runbook_version")]

    CONTENT_FIELDS = (
        "runbook_id",
        "version",
        "name",
        "category",
        "application_id",
        "description",
        "parallelism",
        "content_hash",
        "created_by_id",
    )

    def __str__(self) -> str:
        return f"{self.runbook.slug}@{self.version}"

    def save(self, *args, **kwargs):
        if not self._state.adding and self.pk is not None:
            stored = RunbookVersion.objects.filter(pk=self.pk).values("status", *self.CONTENT_FIELDS).first()
            if stored and stored["status"] in FROZEN_STATUSES:
                changed = [f for f in self.CONTENT_FIELDS if getattr(self, f) != stored[f]]
                if changed:
                    raise FrozenVersionError(
                        f"Runbook version {self} is {stored['status']}: its content ({', '.join(changed)}) "
                        "cannot change; create a new draft version instead."
                    )
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        status = _frozen_status(self.pk)
        if status:
            raise FrozenVersionError(f"Runbook version {self} is {status} and cannot be deleted.")
        return super().delete(*args, **kwargs)


class RunbookParameter(VersionContentMixin, models.Model):
    version = models.ForeignKey(RunbookVersion, on_delete=models.CASCADE, related_name="parameters")
    order = models.PositiveSmallIntegerField(default=0)
    name = models.CharField(max_length=100)
    type = models.CharField(max_length=10, choices=ParameterType.choices, default=ParameterType.STRING)
    default = models.JSONField(null=True, blank=True)
    secret = models.BooleanField(default=False, help_text="Resolved from the secret store; never logged.")
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["version", "order"]
        constraints = [models.UniqueConstraint(fields=["version", "name"], name="unique_parameter_name")]

    def __str__(self) -> str:
        return self.name


class RunbookStep(VersionContentMixin, models.Model):
    version = models.ForeignKey(RunbookVersion, on_delete=models.CASCADE, related_name="steps")
    step_id = models.SlugField(max_length=100, help_text="Id used by `needs` and templates.")
    number = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    action = models.CharField(max_length=50, help_text="Action type: shell, http, tcp, sql, wait, manual, noop …")
    params = models.JSONField(default=dict, blank=True, help_text="The action's parameters (`with`).")
    needs = models.ManyToManyField("self", symmetrical=False, blank=True, related_name="needed_by")
    timeout_seconds = models.PositiveIntegerField(null=True, blank=True)
    retries = models.PositiveSmallIntegerField(default=0)
    rollback = models.JSONField(null=True, blank=True, help_text="{action, with} run to undo this step.")
    approval = models.JSONField(null=True, blank=True, help_text="Per-step approval gate: {role, approvers}.")
    estimated_duration_seconds = models.PositiveIntegerField(null=True, blank=True)
    responsible_role = models.CharField(max_length=100, blank=True)
    automated = models.BooleanField(default=True)
    idempotent = models.BooleanField(default=False)
    continue_on_failure = models.BooleanField(default=False)

    class Meta:
        ordering = ["version", "number"]
        constraints = [
            models.UniqueConstraint(fields=["version", "step_id"], name="unique_step_id_per_version"),
            models.UniqueConstraint(fields=["version", "number"], name="unique_step_number_per_version"),
        ]

    def __str__(self) -> str:
        return f"{self.number}. {self.title}"


class ApprovalLevel(VersionContentMixin, models.Model):
    """Level N must be satisfied by `min_approvers` distinct users holding `role`,
    none of them the version's author, before level N+1 may decide."""

    version = models.ForeignKey(RunbookVersion, on_delete=models.CASCADE, related_name="approval_levels")
    level = models.PositiveSmallIntegerField(validators=[MinValueValidator(1)])
    role = models.CharField(max_length=100, help_text="Role (group) whose members may approve.")
    required = models.BooleanField(default=True)
    min_approvers = models.PositiveSmallIntegerField(default=1, validators=[MinValueValidator(1)])

    class Meta:
        ordering = ["version", "level"]
        constraints = [models.UniqueConstraint(fields=["version", "level"], name="unique_approval_level")]

    def __str__(self) -> str:
        return f"level {self.level}: {self.min_approvers} × {self.role}"


class RunbookApproval(models.Model):
    """One approver's decision on one level of a version: evidence, never deleted with its version."""

    version = models.ForeignKey(RunbookVersion, on_delete=models.PROTECT, related_name="decisions")
    level = models.PositiveSmallIntegerField()
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    decision = models.CharField(max_length=10, choices=Decision.choices)
    comment = models.TextField(blank=True)
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["version", "level", "decided_at"]
        constraints = [
            models.UniqueConstraint(fields=["version", "level", "user"], name="one_decision_per_user_per_level")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.decision}d level {self.level} of {self.version}"


class RunbookImport(VersionContentMixin, models.Model):
    """Provenance of a version imported from another tool's format (runbooks.importers): the original
    document as it was sent, its hash, and the import report (step by step: converted one to one, made a
    manual step carrying the original text, or dropped and why). Frozen with its version."""

    version = models.OneToOneField(RunbookVersion, on_delete=models.CASCADE, related_name="import_record")
    source_format = models.CharField(max_length=20, help_text="rundeck, chaostoolkit, ssm, ansible or asr.")
    filename = models.CharField(max_length=255, blank=True)
    original = models.TextField(help_text="The imported document, byte for byte (as UTF-8 text).")
    original_sha256 = models.CharField(max_length=64)
    report = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.version} imported from {self.source_format}"
