"""Plan use cases: site rules, safe deletion, the dependency map, strategy contents."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import Conflict, InvalidInput
from plans.models import (
    Application,
    ApplicationDependency,
    DRPlan,
    RecoveryStrategy,
    Site,
    StrategyCondition,
    StrategyStep,
    ValidationCheck,
)
from plans.selectors import dependency_graph


def check_plan_sites(primary_site: Site | None, dr_site: Site | None) -> None:
    """A plan must recover somewhere else than where it runs."""
    if primary_site is not None and dr_site is not None and primary_site.pk == dr_site.pk:
        raise InvalidInput(
            f"dr_site must differ from primary_site (both are '{dr_site.code}').", field="dr_site", code="invalid"
        )


def ensure_plan_deletable(plan: DRPlan) -> None:
    """Plans with evidence (executions, test results, compliance reports) are archived, never deleted."""
    evidence = []
    if plan.executions.exists():
        evidence.append("executions")
    if plan.test_results.exists():
        evidence.append("test results")
    if plan.compliance_reports.exists():
        evidence.append("compliance reports")
    if evidence:
        raise Conflict(
            f"Plan '{plan.plan_id}' has {' and '.join(evidence)} and cannot be deleted; "
            "archive it instead (set status to 'archived').",
            code="plan_has_history",
        )


def find_dependency_cycle(application: Application, depends_on: Iterable[Application]) -> list[Application] | None:
    """The cycle `application` would close if it depended on `depends_on`, as a path that starts and
    ends with `application`; None when the new map stays acyclic."""
    targets = list(depends_on)
    if any(dep.pk == application.pk for dep in targets):
        return [application, application]
    if application.pk is None:
        return None  # nothing depends on an application that does not exist yet
    graph = dependency_graph()
    graph[application.pk] = {dep.pk for dep in targets}
    # Depth-first search from application back to itself, remembering the path.
    stack: list[tuple[int, list[int]]] = [(dep.pk, [application.pk, dep.pk]) for dep in targets]
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if node == application.pk:
            names = Application.objects.in_bulk(set(path))
            return [names[i] for i in path]
        if node in seen:
            continue
        seen.add(node)
        stack.extend((nxt, [*path, nxt]) for nxt in sorted(graph.get(node, ()), reverse=True))
    return None


def set_dependencies(
    application: Application,
    depends_on: Iterable[Application],
    actor: Any = None,
    *,
    auth_method: str = AuthMethod.SYSTEM,
    record_audit: bool = True,
) -> None:
    """Replace what `application` depends on. Rejects self-dependency and cycles with an error naming
    the cycle ("cycle: orders-api -> orders-db -> orders-api"). Writes an audit entry unless the
    caller audits the application itself (`record_audit=False`, as the API does)."""
    wanted = list(dict.fromkeys(depends_on))
    cycle = find_dependency_cycle(application, wanted)
    if cycle:
        path = " -> ".join(app.slug for app in cycle)
        message = f"cycle: {path}"
        if len(cycle) == 2:
            message = f"an application cannot depend on itself (cycle: {path})"
        raise InvalidInput(message, field="depends_on", code="dependency_cycle")
    with transaction.atomic():
        before = sorted(application.depends_on.values_list("slug", flat=True))
        wanted_ids = {app.pk for app in wanted}
        ApplicationDependency.objects.filter(application=application).exclude(depends_on_id__in=wanted_ids).delete()
        existing = set(
            ApplicationDependency.objects.filter(application=application).values_list("depends_on_id", flat=True)
        )
        ApplicationDependency.objects.bulk_create(
            [ApplicationDependency(application=application, depends_on=app) for app in wanted if app.pk not in existing]
        )
        if record_audit:
            after = sorted(app.slug for app in wanted)
            audit.record(
                AuditAction.UPDATE,
                application,
                actor=actor,
                auth_method=auth_method,
                before={"depends_on": before},
                after={"depends_on": after},
            )


def _ordered_steps(steps: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Steps keep the order given; an explicit `order` must be unique, a missing one is the position."""
    result = []
    seen: dict[int, int] = {}
    for index, step in enumerate(steps):
        data = dict(step)
        order = data.get("order") or index + 1
        if order in seen:
            raise InvalidInput(
                f"steps[{index}].order: order {order} is already used by steps[{seen[order]}].",
                field=f"steps[{index}].order",
            )
        seen[order] = index
        data["order"] = order
        result.append(data)
    return result


def replace_strategy_contents(
    strategy: RecoveryStrategy,
    *,
    steps: list[Mapping[str, Any]] | None = None,
    conditions: list[Mapping[str, Any]] | None = None,
    validation_checks: list[Mapping[str, Any]] | None = None,
) -> None:
    """Replace-all semantics for a strategy's nested lists; a list given as None is left unchanged."""
    with transaction.atomic():
        if steps is not None:
            ordered = _ordered_steps(steps)
            strategy.steps.all().delete()
            StrategyStep.objects.bulk_create([StrategyStep(strategy=strategy, **data) for data in ordered])
        if conditions is not None:
            strategy.conditions.all().delete()
            StrategyCondition.objects.bulk_create([StrategyCondition(strategy=strategy, **c) for c in conditions])
        if validation_checks is not None:
            strategy.validation_checks.all().delete()
            ValidationCheck.objects.bulk_create([ValidationCheck(strategy=strategy, **c) for c in validation_checks])
    if hasattr(strategy, "_prefetched_objects_cache"):
        strategy._prefetched_objects_cache = {}
