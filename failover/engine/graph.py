"""The step graph of an execution: one runbook version, or a plan's runbooks composed into one DAG.

A composed plan prefixes every step with its application: step_key "<app-slug>.<step-id>"
(or "<app-slug>.<runbook-slug>.<step-id>" when an application has several runbooks of the
category). An application's root steps need the leaf steps of the nearest applications it
depends on (transitively through the dependency map, skipping applications that are not in
the plan or have no runbook of the category), so recovery follows the dependency map.

Priority (higher dispatches first when parallelism slots are scarce): first the tier — a step
counts with the lowest (most critical) tier of itself and everything that waits for it, so a
tier-3 database that a tier-1 API needs is tier-1 work — then the longest remaining critical
path (the step's estimated duration plus its longest chain of dependents).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.exceptions import Conflict, InvalidInput
from failover.models import StepRun
from plans.selectors import dependency_graph
from runbooks.choices import VersionStatus
from runbooks.models import Runbook, RunbookStep
from runbooks.selectors import latest

if TYPE_CHECKING:
    from failover.models import FailoverExecution
    from plans.models import DRPlan
    from runbooks.models import RunbookVersion

DEFAULT_STEP_SECONDS = 1  # a step without an estimate still counts on the critical path
TIER_WEIGHT = 1_000_000  # priority = tier part * TIER_WEIGHT + critical path seconds (capped below it)


@dataclass
class StepSpec:
    """One step of an execution, before it becomes a StepRun row."""

    step_key: str
    title: str
    action: str
    params: dict[str, Any] = field(default_factory=dict)
    needs: list[str] = field(default_factory=list)
    tier: int = 3
    priority: int = 0
    runbook_step_id: int | None = None
    rollback: dict[str, Any] | None = None
    approval: dict[str, Any] | None = None
    timeout_seconds: int | None = None
    retries: int = 0
    idempotent: bool = False
    continue_on_failure: bool = False
    estimated_duration_seconds: int | None = None
    responsible_role: str = ""

    @property
    def instructions(self) -> str:
        """What a person must do, for a manual step (its `with.instructions`)."""
        return str(self.params.get("instructions", "")) if self.action == "manual" else ""


def build_runbook_steps(version: RunbookVersion, *, tier: int = 3, prefix: str = "") -> list[StepSpec]:
    """The steps of one runbook version, in step order; `prefix` is prepended to every step_key and need."""
    steps = list(version.steps.order_by("number"))
    needs = _needs_by_step(version)
    return [
        StepSpec(
            step_key=f"{prefix}{step.step_id}",
            title=step.title,
            action=step.action,
            params=dict(step.params or {}),
            needs=[f"{prefix}{need}" for need in needs.get(step.pk, ())],
            tier=tier,
            runbook_step_id=step.pk,
            rollback=step.rollback,
            approval=step.approval,
            timeout_seconds=step.timeout_seconds,
            retries=step.retries,
            idempotent=step.idempotent,
            continue_on_failure=step.continue_on_failure,
            estimated_duration_seconds=step.estimated_duration_seconds,
            responsible_role=step.responsible_role,
        )
        for step in steps
    ]


def _needs_by_step(version: RunbookVersion) -> dict[int, list[str]]:
    """step pk -> the step_ids it needs, in step order: one query of plain rows from the `needs` table. (A
    prefetch_related of `needs` built a model instance per edge: a third of a 100-step trigger's time.)"""
    edges = (
        RunbookStep.needs.through.objects.filter(from_runbookstep__version=version)
        .order_by("from_runbookstep_id", "to_runbookstep__number")
        .values_list("from_runbookstep_id", "to_runbookstep__step_id")
    )
    needs: dict[int, list[str]] = defaultdict(list)
    for step_pk, need in edges:
        needs[step_pk].append(need)
    return needs


def plan_runbook_versions(
    plan: DRPlan, category: str, *, include_unapproved: bool = False
) -> list[tuple[Any, RunbookVersion | None]]:
    """(runbook, version) for every runbook whose version of `category` recovers an application in the
    plan's scope: its approved version (or, with include_unapproved, its latest version when none is
    approved); version None when the runbook has such versions but none approved. Category and
    application are read from the version itself, so what was approved is what composes the plan.
    Ordered by application tier, then slugs."""
    scope = set(plan.applications.values_list("pk", flat=True))
    runbooks = (
        Runbook.objects.filter(versions__application__in=scope).distinct().prefetch_related("versions__application")
    )
    found = []
    for runbook in runbooks:
        versions = list(runbook.versions.all())
        approved = latest(v for v in versions if v.status == VersionStatus.APPROVED)
        chosen = approved or latest(versions)  # decides whether the runbook belongs here at all
        if chosen is None or chosen.category != category or chosen.application_id not in scope:
            continue
        found.append((runbook, chosen if approved is not None or include_unapproved else None, chosen.application))
    found.sort(key=lambda entry: (entry[2].tier, entry[2].slug, entry[0].slug))
    return [(runbook, version) for runbook, version, _ in found]


def build_plan_steps(plan: DRPlan, category: str, *, include_unapproved: bool = False) -> list[StepSpec]:
    """Compose the plan's runbooks of `category` into one DAG (see the module docstring).

    Raises Conflict (the plan's state, not the request, is at fault) naming the plan when it has no
    such runbook, or naming the runbook that has no approved version (include_unapproved — for dry
    runs — takes its latest version).
    """
    pairs = plan_runbook_versions(plan, category, include_unapproved=include_unapproved)
    if not pairs:
        raise Conflict(
            f"plan {plan.plan_id!r} has no {category} runbook for any of its applications",
            field="plan",
            code="no_runbooks",
        )
    missing = [runbook.slug for runbook, version in pairs if version is None]
    if missing:
        raise Conflict(
            f"plan {plan.plan_id!r}: runbook {', '.join(repr(s) for s in missing)} has no approved version",
            field="plan",
            code="not_approved",
        )
    per_app: dict[int, list[tuple[Any, RunbookVersion]]] = defaultdict(list)
    for runbook, version in pairs:
        per_app[version.application_id].append((runbook, version))

    specs: list[StepSpec] = []
    roots: dict[int, list[str]] = defaultdict(list)  # application id -> root step keys
    leaves: dict[int, list[str]] = defaultdict(list)  # application id -> leaf step keys
    for app_id, entries in per_app.items():
        for runbook, version in entries:
            application = version.application
            prefix = f"{application.slug}." if len(entries) == 1 else f"{application.slug}.{runbook.slug}."
            steps = build_runbook_steps(version, tier=application.tier, prefix=prefix)
            needed = {need for spec in steps for need in spec.needs}
            roots[app_id].extend(spec.step_key for spec in steps if not spec.needs)
            leaves[app_id].extend(spec.step_key for spec in steps if spec.step_key not in needed)
            specs.extend(steps)

    graph = dependency_graph()
    by_key = {spec.step_key: spec for spec in specs}
    for app_id in per_app:
        upstream = [leaf for dep in _nearest_with_steps(app_id, graph, set(per_app)) for leaf in leaves[dep]]
        for key in roots[app_id]:
            by_key[key].needs = [*by_key[key].needs, *upstream]
    topological_order(specs)  # both maps are acyclic by construction; check anyway
    return specs


def _nearest_with_steps(app_id: int, graph: dict[int, set[int]], composed: set[int]) -> list[int]:
    """The applications `app_id` depends on that have steps here, looking through those that don't."""
    found: list[int] = []
    seen: set[int] = {app_id}
    stack = sorted(graph.get(app_id, ()), reverse=True)
    while stack:
        dep = stack.pop()
        if dep in seen:
            continue
        seen.add(dep)
        if dep in composed:
            found.append(dep)
        else:
            stack.extend(sorted(graph.get(dep, ()), reverse=True))
    return sorted(found)


def topological_order(specs: list[StepSpec]) -> list[StepSpec]:
    """Specs ordered so every step comes after what it needs. InvalidInput on an unknown need or a cycle."""
    by_key = {spec.step_key: spec for spec in specs}
    if len(by_key) != len(specs):
        seen: set[str] = set()
        duplicate = next(spec.step_key for spec in specs if spec.step_key in seen or seen.add(spec.step_key))
        raise InvalidInput(f"step {duplicate!r} appears twice in the execution graph")
    for spec in specs:
        for need in spec.needs:
            if need not in by_key:
                raise InvalidInput(f"step {spec.step_key!r} needs unknown step {need!r}")
    remaining = {spec.step_key: len(set(spec.needs)) for spec in specs}
    dependents: dict[str, list[str]] = defaultdict(list)
    for spec in specs:
        for need in set(spec.needs):
            dependents[need].append(spec.step_key)
    ready = [spec.step_key for spec in specs if remaining[spec.step_key] == 0]
    ordered: list[StepSpec] = []
    while ready:
        key = ready.pop(0)
        ordered.append(by_key[key])
        for child in dependents[key]:
            remaining[child] -= 1
            if remaining[child] == 0:
                ready.append(child)
    if len(ordered) != len(specs):
        stuck = sorted(key for key, count in remaining.items() if count > 0)
        raise InvalidInput(f"the execution graph has a cycle through {', '.join(stuck)}")
    return ordered


def assign_priorities(specs: list[StepSpec]) -> list[StepSpec]:
    """Set each spec's priority (in place; returns the list): lower effective tier first, then the
    longer remaining critical path by estimated duration."""
    ordered = topological_order(specs)
    dependents: dict[str, list[StepSpec]] = defaultdict(list)
    for spec in specs:
        for need in set(spec.needs):
            dependents[need].append(spec)
    path: dict[str, int] = {}
    tier: dict[str, int] = {}
    for spec in reversed(ordered):
        children = dependents[spec.step_key]
        own = spec.estimated_duration_seconds or DEFAULT_STEP_SECONDS
        path[spec.step_key] = own + max((path[c.step_key] for c in children), default=0)
        tier[spec.step_key] = min([spec.tier, *(tier[c.step_key] for c in children)])
    for spec in specs:
        tier_part = max(0, 10 - tier[spec.step_key])
        spec.priority = tier_part * TIER_WEIGHT + min(path[spec.step_key], TIER_WEIGHT - 1)
    return specs


def create_step_runs(execution: FailoverExecution, specs: list[StepSpec]) -> list[StepRun]:
    """Insert the StepRun rows of an execution (in dependency order), priorities assigned."""
    assign_priorities(specs)
    rows = [
        StepRun(
            execution=execution,
            step_key=spec.step_key,
            runbook_step_id=spec.runbook_step_id,
            title=spec.title[:200],
            action=spec.action,
            needs=list(spec.needs),
            tier=spec.tier,
            priority=spec.priority,
            params=spec.params,
            rollback=spec.rollback,
            approval=spec.approval,
            timeout_seconds=spec.timeout_seconds,
            retries=spec.retries,
            idempotent=spec.idempotent,
            continue_on_failure=spec.continue_on_failure,
            estimated_duration_seconds=spec.estimated_duration_seconds,
            responsible_role=spec.responsible_role,
        )
        for spec in topological_order(specs)
    ]
    return StepRun.objects.bulk_create(rows)
