"""Reused reads for plans: plan lists with derived testing statistics, dependency walks."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from django.db.models import (
    Aggregate,
    Avg,
    Case,
    Count,
    DateTimeField,
    DurationField,
    ExpressionWrapper,
    F,
    Field,
    FloatField,
    IntegerField,
    Max,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce

from analytics.choices import TestOutcome
from analytics.models import DRTestResult
from plans.choices import TEST_FREQUENCY_DAYS
from plans.models import Application, ApplicationDependency, DRPlan, RecoveryStrategy, Site


def _frequency_interval() -> Case:
    return Case(
        *[When(test_frequency=freq, then=Value(timedelta(days=days))) for freq, days in TEST_FREQUENCY_DAYS.items()],
        default=Value(timedelta(days=TEST_FREQUENCY_DAYS["quarterly"])),
        output_field=DurationField(),
    )


def _test_stat(aggregate: Aggregate, output_field: Field) -> Subquery:
    """One aggregate over a plan's test results, as a correlated subquery.

    Subqueries rather than a JOIN + GROUP BY: the paginator's COUNT(*) then drops
    them (Django strips unreferenced annotations), and only the page's rows pay.
    """
    results = (
        DRTestResult.objects.filter(plan=OuterRef("pk"))
        .order_by()
        .values("plan")
        .annotate(value=aggregate)
        .values("value")
    )
    return Subquery(results, output_field=output_field)


def plans_with_stats(queryset: QuerySet[DRPlan] | None = None) -> QuerySet[DRPlan]:
    """Plans annotated with testing statistics derived from analytics.DRTestResult (never stored):

    last_test_date, next_test_due (last test, or creation if never tested, + the frequency's days),
    tests_total, tests_passed, success_rate (passed/total as a 0..1 fraction, null without tests),
    average_rto_seconds and average_rpo_seconds (over tests that measured them).
    """
    queryset = queryset if queryset is not None else DRPlan.objects.all()
    return queryset.annotate(
        last_test_date=_test_stat(Max("test_date"), DateTimeField()),
        tests_total=Coalesce(_test_stat(Count("pk"), IntegerField()), 0),
        tests_passed=Coalesce(_test_stat(Count("pk", filter=Q(outcome=TestOutcome.PASSED)), IntegerField()), 0),
        average_rto_seconds=_test_stat(Avg("actual_rto_seconds"), FloatField()),
        average_rpo_seconds=_test_stat(Avg("actual_rpo_seconds"), FloatField()),
    ).annotate(
        next_test_due=ExpressionWrapper(
            Coalesce(F("last_test_date"), F("created_at")) + _frequency_interval(), output_field=DateTimeField()
        ),
        success_rate=Case(
            When(tests_total=0, then=Value(None, output_field=FloatField())),
            default=Cast("tests_passed", FloatField()) / Cast("tests_total", FloatField()),
            output_field=FloatField(),
        ),
    )


def plan_list() -> QuerySet[DRPlan]:
    """What the plan API lists: stats plus every relation it renders, in a fixed number of queries.

    Related rows load only the columns the API renders (slugs, codes, username).
    """
    return (
        plans_with_stats()
        .select_related("primary_site", "dr_site", "created_by")
        .defer(
            *(f"{rel}__{field}" for rel in ("primary_site", "dr_site") for field in SITE_DEFERRED),
            *(f"created_by__{field}" for field in USER_DEFERRED),
        )
        .prefetch_related(
            Prefetch("applications", queryset=Application.objects.only("id", "slug")),
            Prefetch("sites", queryset=Site.objects.only("id", "code")),
        )
    )


def plan_summary_rows(*, with_statistics: bool = False) -> QuerySet[DRPlan]:
    """What the plan list renders (plans.api.serializers.DRPlanSummarySerializer), as dicts: no related rows,
    no model instances. Without `with_statistics` (needed only to order by a statistic) the rows carry
    `created_at` instead, and add_plan_statistics() fills in the page's statistics afterwards: one GROUP BY
    over the page's test results is cheaper to build and to run than five correlated subqueries."""
    return (_plan_summary_stats_base() if with_statistics else _plan_summary_base()).all()


@functools.cache
def _plan_summary_base() -> QuerySet[DRPlan]:
    return DRPlan.objects.values(*PLAN_SUMMARY_COLUMNS, "created_at")


@functools.cache
def _plan_summary_stats_base() -> QuerySet[DRPlan]:
    # Resolving the statistics' subqueries costs about a millisecond; do it once and clone.
    # The queryset is never evaluated itself, so nothing is cached but the query's shape.
    return plans_with_stats().values(*PLAN_SUMMARY_COLUMNS, *PLAN_STATISTICS)


@functools.cache
def _page_statistics_base() -> QuerySet[DRTestResult]:
    # The aggregates resolved once (about a third of the statistics' cost on each page); callers filter a clone.
    return (
        DRTestResult.objects.order_by()
        .values("plan_id")
        .annotate(
            last_test_date=Max("test_date"),
            tests_total=Count("pk"),
            tests_passed=Count("pk", filter=Q(outcome=TestOutcome.PASSED)),
            average_rto_seconds=Avg("actual_rto_seconds"),
            average_rpo_seconds=Avg("actual_rpo_seconds"),
        )
    )


def add_plan_statistics(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give plan_summary_rows() rows without statistics those plans_with_stats() computes, with the same
    definitions: one query for the whole page (none when every row has them). Returns `rows`."""
    missing = {row["id"]: row for row in rows if "tests_total" not in row}
    if not missing:
        return rows
    results = _page_statistics_base().filter(plan_id__in=list(missing))
    by_plan = {stats.pop("plan_id"): stats for stats in results}
    default_days = TEST_FREQUENCY_DAYS["quarterly"]
    for plan_id, row in missing.items():
        stats = by_plan.get(plan_id, NO_TESTS)
        total = stats["tests_total"]
        row.update(
            last_test_date=stats["last_test_date"],
            tests_total=total,
            average_rto_seconds=stats["average_rto_seconds"],
            average_rpo_seconds=stats["average_rpo_seconds"],
            success_rate=stats["tests_passed"] / total if total else None,
            next_test_due=(stats["last_test_date"] or row["created_at"])
            + timedelta(days=TEST_FREQUENCY_DAYS.get(row["test_frequency"], default_days)),
        )
    return rows


NO_TESTS = {
    "last_test_date": None, "tests_total": 0, "tests_passed": 0,
    "average_rto_seconds": None, "average_rpo_seconds": None,
}  # fmt: skip


PLAN_SUMMARY_COLUMNS = (
    "id", "plan_id", "name", "status", "strategy", "replication_mode", "failover_mode",
    "rto_seconds", "rpo_seconds", "test_frequency", "compliance_status", "updated_at",
)  # fmt: skip
PLAN_STATISTICS = (
    "last_test_date", "next_test_due", "tests_total", "success_rate", "average_rto_seconds", "average_rpo_seconds",
)  # fmt: skip
SITE_DEFERRED = ("name", "kind", "location", "description", "created_at", "updated_at")
USER_DEFERRED = ("password", "first_name", "last_name", "email", "last_login", "date_joined")


def application_list() -> QuerySet[Application]:
    return Application.objects.select_related("site").prefetch_related("depends_on", "dependents")


def strategy_list() -> QuerySet[RecoveryStrategy]:
    return RecoveryStrategy.objects.select_related("plan").prefetch_related("steps", "conditions", "validation_checks")


def dependency_graph() -> dict[int, set[int]]:
    """application id → ids of the applications it depends on (the whole map, one query)."""
    graph: dict[int, set[int]] = {}
    for app_id, dep_id in ApplicationDependency.objects.values_list("application_id", "depends_on_id"):
        graph.setdefault(app_id, set()).add(dep_id)
    return graph


def recovery_order(application: Application) -> list[Application]:
    """Every application `application` transitively depends on, dependencies first."""
    graph = dependency_graph()
    ordered: list[int] = []
    seen: set[int] = set()

    def visit(node: int) -> None:
        for dep in sorted(graph.get(node, ())):
            if dep not in seen:
                seen.add(dep)
                visit(dep)
                ordered.append(dep)

    visit(application.pk)
    by_id = Application.objects.select_related("site").in_bulk(ordered)
    return [by_id[i] for i in ordered if i in by_id]
