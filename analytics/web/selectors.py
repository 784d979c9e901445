"""Reads for the plans pages (/plans/ and /plans/<plan_id>/), composed from the domain's own queries:
plans.selectors (statistics, the dependency map), failover.engine.graph (which runbooks compose a plan's
failover, failback and test), failover.console (the SVG layout of a step graph), analytics (test results,
findings, action items) and the django-q2 schedules failover.services.schedule_test makes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from analytics.choices import ActionItemStatus
from analytics.models import ActionItem, DRTestResult, TestFinding
from analytics.selectors import plans_with_last_measured
from failover.console import dag_layout
from failover.engine.graph import plan_runbook_versions
from failover.selectors import execution_list
from failover.services import SCHEDULE_PREFIX
from plans.choices import PlanStatus
from plans.models import Application, DRPlan, RecoveryStrategy
from plans.selectors import dependency_graph
from runbooks.choices import RunbookCategory, VersionStatus

CATEGORIES = (RunbookCategory.FAILOVER, RunbookCategory.FAILBACK, RunbookCategory.TEST)
HISTORY_LIMIT = 20


def met(measured: float | None, target: float) -> bool | None:
    return None if measured is None else measured <= target


def _schedules(plan_ids: list[str] | None = None) -> dict[str, Any]:
    from django_q.models import Schedule

    schedules = Schedule.objects.filter(name__startswith=SCHEDULE_PREFIX)
    if plan_ids is not None:
        schedules = schedules.filter(name__in=[SCHEDULE_PREFIX + p for p in plan_ids])
    return {s.name.removeprefix(SCHEDULE_PREFIX): s for s in schedules}


def readiness_summary(plan: DRPlan) -> dict[str, Any]:
    """What a plan lacks to fail over and to be tested, from the database alone (no network): active,
    an approved version of every failover runbook, a test runbook approved. The full check, with secrets,
    reachability and approvers, is Validate readiness (failover.readiness.check_plan)."""
    problems = []
    if plan.status != PlanStatus.ACTIVE:
        problems.append(f"plan is {plan.get_status_display().lower()}")
    failover = plan_runbook_versions(plan, RunbookCategory.FAILOVER)
    if not failover:
        problems.append("no failover runbook")
    elif missing := [runbook.slug for runbook, version in failover if version is None]:
        problems.append("not approved: " + ", ".join(missing))
    test = plan_runbook_versions(plan, RunbookCategory.TEST)
    testable = bool(test) and all(version is not None for _, version in test)
    return {"ready": not problems, "problems": problems, "testable": testable}


def plan_rows() -> list[dict[str, Any]]:
    """Every plan (archived last): status, strategy, targets against the latest test's measurements,
    the next test (scheduled, else due by the plan's frequency) and readiness."""
    plans = list(plans_with_last_measured().order_by("plan_id"))
    plans.sort(key=lambda p: p.status == PlanStatus.ARCHIVED)
    schedules = _schedules([p.plan_id for p in plans])
    now = timezone.now()
    rows = []
    for plan in plans:
        schedule = schedules.get(plan.plan_id)
        scheduled = schedule.next_run if schedule is not None and schedule.repeats != 0 else None
        rows.append(
            {
                "plan": plan,
                "rto_met": met(plan.last_rto_seconds, plan.rto_seconds),
                "rpo_met": met(plan.last_rpo_seconds, plan.rpo_seconds),
                "next_scheduled": scheduled,
                "next_due": plan.next_test_due,
                "overdue": plan.status == PlanStatus.ACTIVE and plan.next_test_due < now,
                "readiness": readiness_summary(plan),
            }
        )
    return rows


def plan_detail() -> QuerySet[DRPlan]:
    return plans_with_last_measured().select_related("primary_site", "dr_site", "created_by")


# --- The dependency map ---------------------------------------------------------------------


def _in_scope_needs(app_id: int, graph: dict[int, set[int]], scope: set[int]) -> set[int]:
    """The applications in scope that `app_id` waits for: direct ones, and through applications outside
    the plan (as failover.engine.graph composes a plan's steps)."""
    found: set[int] = set()
    stack, seen = list(graph.get(app_id, ())), set()
    while stack:
        dep = stack.pop()
        if dep in seen:
            continue
        seen.add(dep)
        if dep in scope:
            found.add(dep)
        else:
            stack.extend(graph.get(dep, ()))
    return found


def recovery_order(applications: list[Application], needs: dict[int, set[int]]) -> list[Application]:
    """Dependencies first; among applications ready at the same time, the most critical tier first
    (then the slug): the order the engine dispatches a composed failover in when slots are scarce."""
    waiting = {app.pk: set(needs.get(app.pk, ())) for app in applications}
    by_id = {app.pk: app for app in applications}
    order: list[Application] = []
    while waiting:
        ready = sorted((by_id[pk] for pk, deps in waiting.items() if not deps), key=lambda a: (a.tier, a.slug))
        if not ready:  # a cycle (plans.services refuses them); show the rest in tier order
            ready = sorted((by_id[pk] for pk in waiting), key=lambda a: (a.tier, a.slug))
        first = ready[0]
        order.append(first)
        del waiting[first.pk]
        for deps in waiting.values():
            deps.discard(first.pk)
    return order


def dependency_map(plan: DRPlan) -> dict[str, Any]:
    """The plan's applications as an SVG graph (failover.console.dag_layout, the console's step graph):
    columns are recovery waves (an application sits right of everything it waits for), each box names
    the application, its tier and its place in the recovery order; arrows point from a dependency to
    the application that waits for it."""
    applications = list(plan.applications.select_related("site").order_by("tier", "slug"))
    scope = {app.pk for app in applications}
    graph = dependency_graph()
    needs = {app.pk: _in_scope_needs(app.pk, graph, scope) for app in applications}
    order = recovery_order(applications, needs)
    position = {app.pk: index for index, app in enumerate(order, start=1)}
    slug_of = {app.pk: app.slug for app in applications}
    steps = [{"key": app.slug, "needs": sorted(slug_of[d] for d in needs[app.pk])} for app in order]
    layout = dag_layout(steps)
    at = {node["key"]: node for node in layout["nodes"]}
    nodes = [
        {
            "app": app,
            "x": at[app.slug]["x"],
            "y": at[app.slug]["y"],
            "order": position[app.pk],
            "needs": [slug_of[d] for d in sorted(needs[app.pk], key=lambda d: position[d])],
        }
        for app in order
    ]
    return {"layout": layout, "nodes": nodes, "order": order}


# --- Runbooks, tests, findings, schedules -------------------------------------------------------


def _approval_state(version: Any) -> str:
    if version.status == VersionStatus.APPROVED:
        return "approved"
    if version.status == VersionStatus.PENDING_APPROVAL:
        return "pending approval"
    return version.get_status_display().lower()


def composed_runbooks(plan: DRPlan) -> list[dict[str, Any]]:
    """Per category (failover, failback, test): the runbooks that compose it, each with the version that
    runs (the approved one, else the latest, which only a dry run takes) and its approval state."""
    sections = []
    for category in CATEGORIES:
        approved = dict(plan_runbook_versions(plan, category))
        rows = []
        for runbook, version in plan_runbook_versions(plan, category, include_unapproved=True):
            rows.append(
                {
                    "runbook": runbook,
                    "version": version,
                    "application": version.application if version else None,
                    "runs": approved.get(runbook) is not None,
                    "state": _approval_state(version) if version else "no version",
                }
            )
        label = RunbookCategory(category).label
        noun = label if category == RunbookCategory.TEST else label.lower()
        sections.append({"category": category, "label": label, "noun": noun, "rows": rows})
    return sections


def test_history(plan: DRPlan, limit: int = HISTORY_LIMIT) -> list[DRTestResult]:
    return list(
        DRTestResult.objects.filter(plan=plan).select_related("execution").order_by("-test_date", "-pk")[:limit]
    )


def findings_and_actions(plan: DRPlan, limit: int = HISTORY_LIMIT) -> dict[str, list[Any]]:
    """The latest findings of the plan's tests and its action items that are still open."""
    findings = list(
        TestFinding.objects.filter(test_result__plan=plan)
        .select_related("test_result")
        .order_by("-test_result__test_date", "id")[:limit]
    )
    open_items = list(
        ActionItem.objects.filter(
            test_result__plan=plan, status__in=[ActionItemStatus.OPEN, ActionItemStatus.IN_PROGRESS]
        )
        .select_related("test_result")
        .order_by("due_date", "id")[:limit]
    )
    return {"findings": findings, "action_items": open_items}


def schedule_of(plan: DRPlan) -> Any:
    return _schedules([plan.plan_id]).get(plan.plan_id)


def recent_executions(plan: DRPlan, limit: int = 10) -> list[Any]:
    return list(execution_list().filter(plan=plan).order_by("-triggered_at", "-id")[:limit])


def strategies(plan: DRPlan) -> list[RecoveryStrategy]:
    return list(
        plan.recovery_strategies.prefetch_related("steps", "conditions", Prefetch("validation_checks")).order_by(
            "kind", "name"
        )
    )


def next_test(plan: DRPlan, schedule: Any, now: datetime | None = None) -> dict[str, Any]:
    now = now or timezone.now()
    return {
        "scheduled": schedule.next_run if schedule is not None and schedule.repeats != 0 else None,
        "due": plan.next_test_due,
        "overdue": plan.status == PlanStatus.ACTIVE and plan.next_test_due < now,
    }


RTO_CHART_TESTS = 20  # the most recent measured tests a chart shows per plan


def rto_chart_rows(plans: list[DRPlan] | None = None, limit: int = RTO_CHART_TESTS) -> dict[str, list[dict[str, Any]]]:
    """plan_id → the plan's latest measured tests, oldest first: {"date", "actual", "target"} (seconds), the
    RTO target in force at each test (as recorded with it). One query."""
    rows = DRTestResult.objects.filter(actual_rto_seconds__isnull=False).select_related("plan")
    if plans is not None:
        rows = rows.filter(plan__in=plans)
    out: dict[str, list[dict[str, Any]]] = {}
    for r in rows.order_by("plan__plan_id", "-test_date", "-pk").values_list(
        "plan__plan_id", "test_date", "actual_rto_seconds", "target_rto_seconds"
    ):
        bucket = out.setdefault(r[0], [])
        if len(bucket) < limit:
            bucket.append({"date": r[1].isoformat(), "actual": r[2], "target": r[3]})
    return {plan_id: list(reversed(bucket)) for plan_id, bucket in out.items()}
