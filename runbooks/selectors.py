"""Reused reads for runbooks and their versions."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from django.db.models import Case, IntegerField, OuterRef, Prefetch, QuerySet, Subquery, Value, When
from django.http import Http404

from core.exceptions import InvalidInput
from core.lookups import lookup_kwargs
from core.roles import holds_role, role_names
from runbooks import actions
from runbooks.choices import Decision, VersionStatus
from runbooks.models import ApprovalLevel, Runbook, RunbookApproval, RunbookStep, RunbookVersion

_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:-([0-9A-Za-z.-]+))?")


def semver_key(version: str) -> tuple:
    """Sort key: 1.2.0-rc1 < 1.2.0 < 1.10.0. Unparseable strings sort first."""
    match = _SEMVER.match(version)
    if not match:
        return (-1, -1, -1, 0, version)
    major, minor, patch, pre = match.groups()
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre or "")


def latest(versions: Iterable[RunbookVersion]) -> RunbookVersion | None:
    """The highest semantic version (ties: the most recently created)."""
    return max(versions, key=lambda v: (semver_key(v.version), v.pk), default=None)


def latest_version(runbook: Runbook) -> RunbookVersion | None:
    return latest(runbook.versions.all())


def default_export_version(runbook: Runbook) -> RunbookVersion | None:
    """The latest approved version, else the latest version."""
    versions = list(runbook.versions.all())
    return latest(v for v in versions if v.status == VersionStatus.APPROVED) or latest(versions)


def get_version(runbook: Runbook, version: str) -> RunbookVersion:
    found = (
        RunbookVersion.objects.filter(runbook=runbook, version=version).select_related("runbook", "application").first()
    )
    if found is None:
        raise Http404(f"Runbook {runbook.slug} has no version {version!r}.")
    return found


def get_runbook(id_or_slug: str | int) -> Runbook:
    """By numeric id or slug (core.lookups: slugs are never all digits)."""
    found = Runbook.objects.filter(**lookup_kwargs(id_or_slug, "slug")).first()
    if found is None:
        raise Http404(f"No runbook {id_or_slug!r}.")
    return found


def current_versions() -> QuerySet[RunbookVersion]:
    """A runbook's current version first: its approved version, else the most recently created one."""
    return RunbookVersion.objects.order_by(
        Case(When(status=VersionStatus.APPROVED, then=Value(0)), default=Value(1), output_field=IntegerField()),
        "-created_at",
        "-pk",
    )


def with_current_version(queryset: QuerySet[Runbook]) -> QuerySet[Runbook]:
    """Annotate each runbook with its current version's `name`, `category` and `application_slug`
    (they belong to versions; this is how a runbook is labelled, searched and filtered in lists)."""
    current = current_versions().filter(runbook=OuterRef("pk"))
    return queryset.annotate(
        name=Subquery(current.values("name")[:1]),
        category=Subquery(current.values("category")[:1]),
        application_slug=Subquery(current.values("application__slug")[:1]),
    )


def runbooks_with_versions() -> QuerySet[Runbook]:
    return with_current_version(Runbook.objects.all()).prefetch_related(
        Prefetch("versions", queryset=RunbookVersion.objects.only("id", "runbook_id", "version", "status"))
    )


def version_detail_queryset() -> QuerySet[RunbookVersion]:
    return RunbookVersion.objects.select_related("runbook", "application", "created_by").prefetch_related(
        "parameters",
        "approval_levels",
        "decisions__user",
        "contributors",
        Prefetch("steps", queryset=RunbookStep.objects.order_by("number").prefetch_related("needs")),
    )


# --- The builder: action catalogue, critical path, approval state ------------------------------

_DURATION_TEXT = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")


def action_catalogue() -> list[dict[str, Any]]:
    """Every registered action type with its description and parameter schema (for generated forms)."""
    return [
        {"name": spec.name, "description": spec.description, "params_schema": spec.params_schema}
        for spec in (actions.get_action(name) for name in actions.action_names())
        if spec is not None
    ]


def _estimate_seconds(value: Any) -> int:
    """A step's estimated_duration in seconds: an int, or '1h30m'-style text; anything else counts as 0."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, str) and value:
        match = _DURATION_TEXT.match(value.strip())
        if match:
            hours, minutes, seconds = (int(g or 0) for g in match.groups())
            return hours * 3600 + minutes * 60 + seconds
    return 0


def critical_path(doc: dict[str, Any]) -> tuple[list[str], int]:
    """The critical path of a runbook document and its estimated total duration in seconds.

    The longest chain of `needs` by summed `estimated_duration` (a step without an estimate
    counts 0 s). Ties go to the chain with more steps, then to the step earlier in the document,
    so a runbook without estimates shows its longest chain. Unknown `needs` are ignored; a cycle
    is refused (InvalidInput naming the steps). Twin of static/runbooks/critical_path.js — keep
    both in step (runbooks/tests/test_critical_path.py runs the same cases through both).
    """
    steps: list[dict[str, Any]] = []
    seen: set[str] = set()
    for step in doc.get("steps") or []:
        if isinstance(step, dict) and isinstance(step.get("id"), str) and step["id"] not in seen:
            seen.add(step["id"])
            steps.append(step)
    index = {step["id"]: position for position, step in enumerate(steps)}
    needs = {
        step["id"]: [n for n in dict.fromkeys(step.get("needs") or []) if n in index and n != step["id"]]
        for step in steps
    }
    dependents: dict[str, list[str]] = {step_id: [] for step_id in index}
    waiting = {step_id: len(required) for step_id, required in needs.items()}
    for step_id, required in needs.items():
        for need in required:
            dependents[need].append(step_id)
    ready = [step_id for step_id in index if waiting[step_id] == 0]
    order: list[str] = []
    while ready:
        current = ready.pop(0)
        order.append(current)
        for child in dependents[current]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
                ready.sort(key=index.__getitem__)
    if len(order) != len(index):
        stuck = ", ".join(step_id for step_id in index if waiting[step_id] > 0)
        raise InvalidInput(f"the steps' needs form a cycle through {stuck}", field="steps")

    finish: dict[str, tuple[int, int]] = {}  # (seconds, steps) of the best chain ending at the step
    previous: dict[str, str | None] = {}
    for step_id in order:
        best: str | None = None
        for need in needs[step_id]:
            if best is None or _better(finish[need], index[need], finish[best], index[best]):
                best = need
        base = finish[best] if best is not None else (0, 0)
        finish[step_id] = (base[0] + _estimate_seconds(steps[index[step_id]].get("estimated_duration")), base[1] + 1)
        previous[step_id] = best
    end: str | None = None
    for step_id in index:
        if end is None or _better(finish[step_id], index[step_id], finish[end], index[end]):
            end = step_id
    path: list[str] = []
    while end is not None:
        path.append(end)
        end = previous[end]
    path.reverse()
    return path, finish[path[-1]][0] if path else 0


def _better(score: tuple[int, int], position: int, other: tuple[int, int], other_position: int) -> bool:
    return score > other or (score == other and position < other_position)


def contributed(version: RunbookVersion, user: Any) -> bool:
    """Did `user` create, edit or submit `version`? Then it may not approve or reject it."""
    if user is None or getattr(user, "pk", None) is None:
        return False
    return version.created_by_id == user.pk or version.contributors.filter(pk=user.pk).exists()


def approval_overview(version: RunbookVersion, user: Any) -> dict[str, Any]:
    """The approval levels of a version, the decisions so far, and whether `user` may decide now.

    Each level's state: approved, rejected, advisory (not required), current (deciding now),
    waiting (for an earlier level), or open (the version is not pending approval).

    A read for pages: `may_decide` and `reason` mirror the rules runbooks.services.decide enforces
    (which stays the authority: the API refuses anything these hints get wrong).
    """
    levels = list(version.approval_levels.order_by("level"))
    decisions = list(version.decisions.select_related("user").order_by("level", "decided_at"))
    current: int | None = None
    rows = []
    for level in levels:
        approvers = [d.user.get_username() for d in decisions if d.level == level.level and d.decision == "approve"]
        rejecters = [d.user.get_username() for d in decisions if d.level == level.level and d.decision == "reject"]
        satisfied = len(approvers) >= level.min_approvers
        if rejecters:
            state = "rejected"
        elif satisfied:
            state = "approved"
        elif not level.required:
            state = "advisory"
        elif version.status != VersionStatus.PENDING_APPROVAL:
            state = "open"  # not submitted (draft), or decided elsewhere (rejected at another level)
        elif current is None:
            state = "current"
            current = level.level
        else:
            state = "waiting"
        rows.append(
            {
                "level": level.level,
                "role": level.role,
                "required": level.required,
                "min_approvers": level.min_approvers,
                "approvers": approvers,
                "rejecters": rejecters,
                "state": state,
            }
        )
    may_decide, reason = _may_decide(version, user, levels, current, decisions)
    return {
        "levels": rows,
        "decisions": [
            {
                "level": d.level,
                "user": d.user.get_username(),
                "decision": d.decision,
                "comment": d.comment,
                "decided_at": d.decided_at,
            }
            for d in decisions
        ],
        "current_level": current,
        "may_decide": may_decide,
        "reason": reason,
    }


def _may_decide(
    version: RunbookVersion, user: Any, levels: list[Any], current: int | None, decisions: list[Any]
) -> tuple[bool, str]:
    if version.status != VersionStatus.PENDING_APPROVAL:
        status = version.get_status_display().lower()
        return False, f"This version is {status}; only versions pending approval can be decided."
    if not user.is_authenticated or not user.has_perm("runbooks.approve_runbookversion"):
        return False, "You do not hold the permission to approve runbook versions."
    if contributed(version, user):
        return False, (
            "You created, edited or submitted this version: another person must approve it (separation of duties)."
        )
    if any(d.user_id == user.pk for d in decisions):
        return False, "You already decided on this version; each level needs different people."
    if levels and current is not None:
        role = next(level.role for level in levels if level.level == current)
        if not holds_role(user, role):
            return False, f"Level {current} must be decided by a holder of role {role!r}."
    return True, ""


# --- Approvals waiting for a person -----------------------------------------------

APPROVE_RUNBOOK = "runbooks.approve_runbookversion"


def outstanding_level(levels: list[ApprovalLevel], decisions: list[RunbookApproval]) -> ApprovalLevel | None:
    """The first required level without enough approvals (non-required levels are advisory)."""
    for level in levels:
        approvals = {d.user_id for d in decisions if d.level == level.level and d.decision == Decision.APPROVE}
        if level.required and len(approvals) < level.min_approvers:
            return level
    return None


def runbook_approvals_for(user: Any) -> list[RunbookVersion]:
    """Runbook versions pending approval that this user may decide now (runbooks.services.decide's rules:
    permitted, not a contributor (creator, editor or submitter), not decided before, holding the current
    required level's role)."""
    if not user.is_authenticated or not user.has_perm(APPROVE_RUNBOOK):
        return []
    roles = role_names(user)
    pending = (
        RunbookVersion.objects.filter(status=VersionStatus.PENDING_APPROVAL)
        .exclude(created_by=user)
        .exclude(contributors=user)
        .exclude(decisions__user=user)
        .select_related("runbook", "created_by")
        .prefetch_related("approval_levels", "decisions")
        .order_by("submitted_at", "id")
    )
    mine = []
    for version in pending:
        levels = sorted(version.approval_levels.all(), key=lambda lv: lv.level)
        if not levels:
            mine.append(version)
            continue
        current = outstanding_level(levels, list(version.decisions.all()))
        if current is not None and (roles is None or current.role in roles):
            mine.append(version)
    return mine
