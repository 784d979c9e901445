"""Runbook use cases: import/export, drafts, approvals. Each change is audited in its transaction.

Version life cycle (one transition function, `transition`, with the table TRANSITIONS):

    draft ──submit──▶ pending_approval ──all required levels approve──▶ approved ──next approval──▶ superseded
                              └──────────any approver rejects──────────▶ rejected

Only drafts are edited. Editing anything else means `create_draft` (a copy with the
patch number bumped). A runbook has at most one draft at a time: `create_draft`
refuses while one exists (edit or submit that draft first); importing a document
with a new version number always creates a draft.

Separation of duties: every person who created a version, edited its content or submitted it
is one of its `contributors`, and no contributor may approve or reject it (`decide`).
"""

from __future__ import annotations

import re
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import Conflict, InvalidInput, PermissionDenied
from core.roles import holds_role, require_permission
from plans.models import Application
from runbooks import documents, selectors
from runbooks.choices import Decision, VersionStatus
from runbooks.models import ApprovalLevel, Runbook, RunbookApproval, RunbookParameter, RunbookStep, RunbookVersion

User = AbstractBaseUser | AnonymousUser | None
APPROVE_PERMISSION = "runbooks.approve_runbookversion"

TRANSITIONS: dict[str, set[str]] = {
    VersionStatus.DRAFT: {VersionStatus.PENDING_APPROVAL},
    VersionStatus.PENDING_APPROVAL: {VersionStatus.APPROVED, VersionStatus.REJECTED},
    VersionStatus.APPROVED: {VersionStatus.SUPERSEDED},
    VersionStatus.REJECTED: set(),
    VersionStatus.SUPERSEDED: set(),
}
_TRANSITION_AUDIT = {
    VersionStatus.PENDING_APPROVAL: AuditAction.SUBMIT,
    VersionStatus.APPROVED: AuditAction.APPROVE,
    VersionStatus.REJECTED: AuditAction.REJECT,
    VersionStatus.SUPERSEDED: AuditAction.UPDATE,
}
_SEMVER_CORE = re.compile(r"^(\d+)\.(\d+)\.(\d+)")


def _author(actor: User) -> Any:
    return actor if actor is not None and actor.is_authenticated else None


# --- The state machine ------------------------------------------------------------


def transition(
    version: RunbookVersion,
    to: str,
    *,
    actor: User = None,
    auth_method: str = AuthMethod.SYSTEM,
    comment: str = "",
    **fields: Any,
) -> RunbookVersion:
    """Move a version to `to` if the table allows it from its stored status.

    A conditional UPDATE, so of two concurrent callers exactly one wins; the loser
    gets Conflict (and its transaction, with anything it wrote, rolls back).
    """
    sources = [status for status, targets in TRANSITIONS.items() if to in targets]
    with transaction.atomic():
        updated = RunbookVersion.objects.filter(pk=version.pk, status__in=sources).update(status=to, **fields)
        if updated != 1:
            current = RunbookVersion.objects.filter(pk=version.pk).values_list("status", flat=True).first()
            raise Conflict(f"Runbook version {version} is {current}; it cannot become {to}.", code="invalid_transition")
        before = version.status
        version.refresh_from_db()
        audit.record(
            _TRANSITION_AUDIT[to],
            version,
            actor=actor,
            auth_method=auth_method,
            before={"status": before},
            after={"status": to, **{k: v for k, v in fields.items()}},
            comment=comment,
        )
    return version


# --- Import / export --------------------------------------------------------------


def import_runbook_text(
    text: str, *, fmt: str | None = None, actor: User = None, auth_method: str = AuthMethod.SYSTEM
) -> RunbookVersion:
    """Parse YAML/JSON (fmt None = detect) and import it; see import_runbook_document."""
    return import_runbook_document(documents.parse_document(text, fmt), actor=actor, auth_method=auth_method)


def import_runbook_document(
    doc: Any,
    *,
    actor: User = None,
    auth_method: str = AuthMethod.SYSTEM,
    runbook: Runbook | None = None,
) -> RunbookVersion:
    """Create the runbook (new slug) or a new draft version of it.

    Importing a slug+version that exists with identical content returns the existing
    version (idempotent; `version.was_created` is False); different content → Conflict.
    With `runbook`, the document must be for that runbook (its slug may be omitted).
    """
    if runbook is not None and isinstance(doc, dict) and "slug" not in doc:
        doc = {**doc, "slug": runbook.slug}
    canonical = documents.normalise(doc)
    if runbook is not None and canonical["slug"] != runbook.slug:
        raise InvalidInput(f"the document is for runbook {canonical['slug']!r}, not {runbook.slug!r}", field="slug")
    application = _application(canonical["application"])
    try:
        with transaction.atomic():
            found = Runbook.objects.select_for_update().filter(slug=canonical["slug"]).first()
            if found is None:
                found = Runbook.objects.create(slug=canonical["slug"], created_by=_author(actor))
                audit.record(
                    AuditAction.CREATE, found, actor=actor, auth_method=auth_method, after=audit.snapshot(found)
                )
            else:
                existing = found.versions.filter(version=canonical["version"]).first()
                if existing is not None:
                    stored = documents.version_content(documents.document_from_version(existing))
                    if stored == documents.version_content(canonical):
                        existing.was_created = False
                        return existing
                    raise Conflict(
                        f"Version {canonical['version']} of runbook {found.slug!r} already exists with different "
                        "content; give the document a new version number.",
                        field="version",
                    )
            version = _create_version(found, canonical, application, actor)
            audit.record(
                AuditAction.IMPORT,
                version,
                actor=actor,
                auth_method=auth_method,
                after=_version_summary(version, canonical),
            )
    except IntegrityError:
        raise Conflict(
            f"Runbook {canonical['slug']!r} version {canonical['version']} was created concurrently; retry."
        ) from None
    version.was_created = True
    return version


def export_version(version: RunbookVersion, fmt: str = "yaml") -> str:
    return documents.dump_document(documents.document_from_version(version), fmt)


def _application(slug: str | None) -> Application | None:
    if slug is None:
        return None
    application = Application.objects.filter(slug=slug).first()
    if application is None:
        raise InvalidInput(f"no application with slug {slug!r}", field="application")
    return application


def _version_summary(version: RunbookVersion, canonical: dict[str, Any]) -> dict[str, Any]:
    return {
        "runbook": version.runbook.slug,
        "version": version.version,
        "status": version.status,
        "content_hash": version.content_hash,
        "steps": [step["id"] for step in canonical["steps"]],
    }


def _create_version(
    runbook: Runbook, canonical: dict[str, Any], application: Application | None, actor: User
) -> RunbookVersion:
    version = RunbookVersion.objects.create(
        runbook=runbook,
        version=canonical["version"],
        name=canonical["name"],
        category=canonical["category"],
        application=application,
        description=canonical["description"],
        parallelism=canonical["parallelism"],
        content_hash=documents.content_hash(canonical),
        created_by=_author(actor),
    )
    _add_contributor(version, actor)
    _write_rows(version, canonical)
    return version


def _add_contributor(version: RunbookVersion, actor: User) -> None:
    """`actor` created, edited or submitted `version`: it may no longer approve or reject it."""
    author = _author(actor)
    if author is not None:
        version.contributors.add(author)


def _write_rows(version: RunbookVersion, canonical: dict[str, Any]) -> None:
    RunbookParameter.objects.bulk_create(
        RunbookParameter(
            version=version,
            order=order,
            name=name,
            type=spec["type"],
            default=spec["default"],
            secret=spec["secret"],
            description=spec["description"],
        )
        for order, (name, spec) in enumerate(canonical["parameters"].items())
    )
    steps = [
        RunbookStep.objects.create(
            version=version,
            step_id=step["id"],
            number=number,
            title=step["title"],
            description=step["description"],
            action=step["action"],
            params=step["with"],
            timeout_seconds=step["timeout"],
            retries=step["retries"],
            rollback=step["rollback"],
            approval=step["approval"],
            estimated_duration_seconds=step["estimated_duration"],
            responsible_role=step["responsible_role"],
            automated=step["automated"],
            idempotent=step["idempotent"],
            continue_on_failure=step["continue_on_failure"],
        )
        for number, step in enumerate(canonical["steps"], start=1)
    ]
    by_id = {step.step_id: step for step in steps}
    through = RunbookStep.needs.through
    through.objects.bulk_create(
        through(from_runbookstep_id=by_id[step["id"]].pk, to_runbookstep_id=by_id[need].pk)
        for step in canonical["steps"]
        for need in step["needs"]
    )
    ApprovalLevel.objects.bulk_create(
        ApprovalLevel(
            version=version,
            level=level["level"],
            role=level["role"],
            required=level["required"],
            min_approvers=level["approvers"],
        )
        for level in canonical["approvals"]
    )


# --- Drafts -----------------------------------------------------------------------


def bump_patch(version: str) -> str:
    """1.2.3 → 1.2.4; 1.2.3-rc.1 → 1.2.4."""
    match = _SEMVER_CORE.match(version)
    if not match:
        raise InvalidInput(f"{version!r} is not a semantic version", field="version")
    major, minor, patch = (int(part) for part in match.groups())
    return f"{major}.{minor}.{patch + 1}"


def create_draft(
    version: RunbookVersion,
    actor: User,
    new_version: str | None = None,
    *,
    auth_method: str = AuthMethod.SYSTEM,
) -> RunbookVersion:
    """Copy `version` into a new draft (default: the next free patch number).

    Refused (Conflict) while the runbook already has a draft: edit or submit that one.
    """
    runbook = version.runbook
    canonical = documents.document_from_version(version)
    with transaction.atomic():
        Runbook.objects.select_for_update().filter(pk=runbook.pk).first()
        draft = RunbookVersion.objects.filter(runbook=runbook, status=VersionStatus.DRAFT).first()
        if draft is not None:
            raise Conflict(
                f"Runbook {runbook.slug!r} already has a draft ({draft.version}); edit or submit it first.",
                code="draft_exists",
            )
        taken = set(RunbookVersion.objects.filter(runbook=runbook).values_list("version", flat=True))
        if new_version is None:
            new_version = bump_patch(version.version)
            while new_version in taken:
                new_version = bump_patch(new_version)
        elif new_version in taken:
            raise Conflict(f"Runbook {runbook.slug!r} already has a version {new_version}.", field="version")
        canonical = documents.normalise({**canonical, "version": new_version})
        draft = _create_version(runbook, canonical, version.application, actor)
        audit.record(
            AuditAction.CREATE,
            draft,
            actor=actor,
            auth_method=auth_method,
            after=_version_summary(draft, canonical),
            comment=f"draft copied from {version.version}",
        )
    draft.was_created = True
    return draft


def update_draft(
    version: RunbookVersion, doc: Any, actor: User, *, auth_method: str = AuthMethod.SYSTEM
) -> RunbookVersion:
    """Replace a draft's content with `doc` (its slug and version may be omitted; if given they must match)."""
    runbook = version.runbook
    if isinstance(doc, dict):
        doc = {"slug": runbook.slug, "version": version.version, **doc}
    canonical = documents.normalise(doc)
    for key, expected in (("slug", runbook.slug), ("version", version.version)):
        if canonical[key] != expected:
            raise InvalidInput(f"{canonical[key]!r} does not match this draft's {key} {expected!r}", field=key)
    application = _application(canonical["application"])
    with transaction.atomic():
        locked = RunbookVersion.objects.select_for_update().get(pk=version.pk)
        if locked.status != VersionStatus.DRAFT:
            raise Conflict(
                f"Runbook version {locked} is {locked.status}; only drafts can be edited. Create a new draft instead.",
                code="version_frozen",
            )
        before = {"content_hash": locked.content_hash}
        locked.steps.all().delete()
        locked.parameters.all().delete()
        locked.approval_levels.all().delete()
        locked.name = canonical["name"]
        locked.category = canonical["category"]
        locked.application = application
        locked.description = canonical["description"]
        locked.parallelism = canonical["parallelism"]
        locked.content_hash = documents.content_hash(canonical)
        locked.save()
        _write_rows(locked, canonical)
        _add_contributor(locked, actor)
        audit.record(
            AuditAction.UPDATE,
            locked,
            actor=actor,
            auth_method=auth_method,
            before=before,
            after=_version_summary(locked, canonical),
        )
    return locked


# --- Approvals --------------------------------------------------------------------


def submit_for_approval(
    version: RunbookVersion, actor: User, *, auth_method: str = AuthMethod.SYSTEM
) -> RunbookVersion:
    """Draft → pending approval. The submitter becomes a contributor: it vouches for the content and
    cannot also approve it."""
    with transaction.atomic():
        submitted = transition(
            version, VersionStatus.PENDING_APPROVAL, actor=actor, auth_method=auth_method, submitted_at=timezone.now()
        )
        _add_contributor(submitted, actor)
    return submitted


def decide(
    version: RunbookVersion,
    actor: Any,
    decision: str,
    comment: str = "",
    *,
    auth_method: str = AuthMethod.SYSTEM,
) -> RunbookVersion:
    """Record one approver's decision on the current approval level of a pending version.

    Rules: the actor holds `runbooks.approve_runbookversion`, is not one of the version's
    contributors (created, edited or submitted it), holds the current level's role and has not decided on this version
    before (a person counts once, at one level). Levels are decided in order; a
    rejection rejects the version; when every required level has its approvers the
    version is approved and the runbook's previously approved version superseded.
    Without levels, one approval by any permitted non-author approves.
    """
    if decision not in Decision.values:
        raise InvalidInput(f"decision must be one of {', '.join(Decision.values)}", field="decision")
    if decision == Decision.REJECT and not comment.strip():
        raise InvalidInput("a rejection needs a comment explaining why", field="comment")
    require_permission(actor, APPROVE_PERMISSION, "approve or reject", system=False)
    with transaction.atomic():
        locked = RunbookVersion.objects.select_for_update().select_related("runbook").get(pk=version.pk)
        if locked.status != VersionStatus.PENDING_APPROVAL:
            raise Conflict(
                f"Runbook version {locked} is {locked.status}; only versions pending approval can be decided.",
                code="invalid_transition",
            )
        if selectors.contributed(locked, actor):
            raise PermissionDenied(
                f"Separation of duties: {actor.get_username()} created, edited or submitted {locked} and cannot "
                "approve or reject it."
            )
        levels = list(locked.approval_levels.order_by("level"))
        decisions = list(locked.decisions.all())
        earlier = next((d for d in decisions if d.user_id == actor.pk), None)
        if earlier is not None:
            raise Conflict(
                f"{actor.get_username()} already decided on {locked} (level {earlier.level}); "
                "each level needs different people."
            )
        level_number = 1
        if levels:
            current = selectors.outstanding_level(levels, decisions)
            if current is None:  # cannot happen while pending; be explicit rather than approve silently
                raise Conflict(f"Runbook version {locked} has no approval level left to decide.")
            if not holds_role(actor, current.role):
                later = next((lv for lv in levels if lv.level > current.level and holds_role(actor, lv.role)), None)
                if later is not None:
                    raise Conflict(
                        f"Level {current.level} ({current.role}) must be approved before level {later.level} "
                        f"({later.role}) can decide.",
                        code="approval_order",
                    )
                raise PermissionDenied(
                    f"Level {current.level} of {locked} must be decided by a holder of role {current.role!r}; "
                    f"{actor.get_username()} does not hold it."
                )
            level_number = current.level
        record = RunbookApproval.objects.create(
            version=locked, level=level_number, user=actor, decision=decision, comment=comment
        )
        audit.record(
            AuditAction.APPROVE if decision == Decision.APPROVE else AuditAction.REJECT,
            record,
            actor=actor,
            auth_method=auth_method,
            after={"version": str(locked), "level": level_number, "decision": decision},
            comment=comment,
        )
        if decision == Decision.REJECT:
            return transition(locked, VersionStatus.REJECTED, actor=actor, auth_method=auth_method, comment=comment)
        if levels and selectors.outstanding_level(levels, [*decisions, record]) is not None:
            return locked
        approved = RunbookVersion.objects.filter(runbook_id=locked.runbook_id, status=VersionStatus.APPROVED)
        for previous in approved.exclude(pk=locked.pk):
            transition(
                previous,
                VersionStatus.SUPERSEDED,
                actor=actor,
                auth_method=auth_method,
                comment=f"superseded by {locked.version}",
            )
        return transition(
            locked,
            VersionStatus.APPROVED,
            actor=actor,
            auth_method=auth_method,
            comment=comment,
            approved_at=timezone.now(),
        )
