"""The current RTO/RPO picture per plan and application (`GET /api/v1/dr/rto-rpo`).

Per application: its RTO target's targets, the current RPO from the latest probe samples (the worst of its
replication probes' latest samples; null when they measured nothing), availability over the period (probe
samples that found it up, of those that could tell), the RPO trend (the last hour's mean against the hour
before: more than TREND_CHANGE higher is degrading, lower improving, else stable; null without both), and its
part of the plan's RTO estimate. Per plan: the RTO estimate from the remaining critical path of historical step
durations (failover/projection.py, the console's projection: of the running failover when there is one, else
of the plan's failover runbooks composed as they would run now, every step still to do), and the ML service's
P50/P90 (plans/predictions.py; "prediction unavailable" when it is down).

Status (worst wins; a plan takes the worst of its applications and its own):
- breached: a measured value past its target now: current RPO above the RPO target, availability below the
  availability target, the RTO estimate above the RTO target, or an open SLA violation;
- at_risk: within the targets but above AT_RISK_RATIO (80 %) of the RPO or RTO target, the ML P90 above the
  plan's RTO, or a replication probe whose latest sample is unknown (the RPO cannot be told);
- ok: otherwise.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from django.db.models import Count, OuterRef, Subquery
from django.utils import timezone

from analytics.models import RTOTarget
from analytics.monitoring import retention
from analytics.monitoring.choices import HealthStatus, Metric, Resolution
from analytics.monitoring.models import Probe, ProbeSample, SLAViolation
from core.exceptions import DomainError
from failover.choices import ACTIVE_STATUSES, ExecutionType
from failover.choices import StepStatus as SS
from failover.engine.graph import build_plan_steps
from failover.models import FailoverExecution
from failover.projection import StepTiming, expected_duration, historical_medians, project, project_execution
from plans import predictions
from plans.choices import PlanStatus
from plans.models import DRPlan

AT_RISK_RATIO = 0.8
TREND_CHANGE = 0.2
PERIODS = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30), "90d": timedelta(days=90)}
PERIODS["1y"] = timedelta(days=365)
DEFAULT_PERIOD = "30d"
FAILOVER_TYPES = (ExecutionType.PLANNED, ExecutionType.UNPLANNED)
_ORDER = {HealthStatus.OK: 0, HealthStatus.AT_RISK: 1, HealthStatus.BREACHED: 2}


def worst(*statuses: str) -> str:
    return max(statuses, key=lambda s: _ORDER[s], default=HealthStatus.OK)


def _against(value: float | None, target: float, what: str) -> list[tuple[str, str]]:
    """[(status, reason)] of a measured value against its target (the module's rule)."""
    if value is None:
        return []
    if value > target:
        return [(HealthStatus.BREACHED, f"{what} above target")]
    if value > AT_RISK_RATIO * target:
        return [(HealthStatus.AT_RISK, f"{what} near target")]
    return []


def active_failovers(plans: list[DRPlan]) -> dict[int, FailoverExecution]:
    """plan id -> its running (not dry) failover, the latest if several, in one query."""
    found: dict[int, FailoverExecution] = {}
    for execution in (
        FailoverExecution.objects.filter(
            plan__in=plans, status__in=ACTIVE_STATUSES, execution_type__in=FAILOVER_TYPES, dry_run=False
        )
        .select_related("plan")
        .order_by("triggered_at", "pk")
    ):
        found[execution.plan_id] = execution
    return found


def rto_estimate(plan: DRPlan, now: datetime, active: FailoverExecution | None = None) -> dict[str, Any]:
    """{"seconds", "source", "critical_path", "per_application": {slug: seconds}} or {"seconds": None, "reason"};
    `active`: the plan's running failover (active_failovers), if any."""
    if active is not None:
        projection = project_execution(active, list(active.step_runs.all()), now)
        source, seconds = f"execution #{active.pk} (running): remaining critical path", projection.remaining_seconds
        start = now
    else:
        try:
            specs = build_plan_steps(plan, "failover", include_unapproved=True)
        except DomainError as exc:
            return {"seconds": None, "reason": exc.message}
        medians = historical_medians(SimpleNamespace(triggered_at=now, pk=None), [s.step_key for s in specs])
        timings = []
        for spec in specs:
            expected, origin = expected_duration(spec.step_key, spec.estimated_duration_seconds, medians)
            timings.append(
                StepTiming(
                    spec.step_key, SS.PENDING, tuple(spec.needs), expected_seconds=expected, expected_source=origin
                )
            )
        projection = project(timings, now=now, start=now, target_seconds=plan.rto_seconds)
        source, seconds, start = "critical path of historical step durations", projection.projected_total_seconds, now
    per_application: dict[str, float] = {}
    for key, forecast in projection.steps.items():
        slug = key.split(".", 1)[0]
        if forecast.finish is not None:
            span = max(0.0, (forecast.finish - start).total_seconds())
            per_application[slug] = max(per_application.get(slug, 0.0), span)
    return {
        "seconds": round(seconds, 1),
        "source": source,
        "critical_path": projection.critical_path,
        "per_application": {k: round(v, 1) for k, v in per_application.items()},
    }


def _trend(points: list[list[Any]], now: datetime) -> str | None:
    hour = retention.floor(retention.epoch(now), retention.HOUR)
    by_bucket = {p[0]: p for p in points}
    last, before = by_bucket.get(hour) or by_bucket.get(hour - 3600), None
    if last is not None:
        before = by_bucket.get(last[0] - 3600)
    if last is None or before is None:
        return None
    if last[2] > before[2] * (1 + TREND_CHANGE) and last[2] - before[2] >= 1:
        return "degrading"
    if last[2] < before[2] * (1 - TREND_CHANGE) and before[2] - last[2] >= 1:
        return "improving"
    return "stable"


def overview(
    *, plan: DRPlan | None = None, application: Any = None, period: str = DEFAULT_PERIOD, now: datetime | None = None
) -> dict[str, Any]:
    now = now or timezone.now()
    since = now - PERIODS[period]
    plans = DRPlan.objects.exclude(status=PlanStatus.ARCHIVED).prefetch_related("applications").order_by("plan_id")
    if plan is not None:
        plans = plans.filter(pk=plan.pk)
    plans = list(plans)
    app_ids = {a.pk for p in plans for a in p.applications.all()}
    if application is not None:
        app_ids &= {application.pk}
    targets = {t.application_id: t for t in RTOTarget.objects.filter(application_id__in=app_ids)}

    latest = ProbeSample.objects.filter(probe=OuterRef("pk")).order_by("-at", "-id")
    probe_rows = list(
        Probe.objects.filter(monitor__application_id__in=app_ids)
        .annotate(
            last_at=Subquery(latest.values("at")[:1]),
            last_rpo=Subquery(latest.values("rpo_seconds")[:1]),
            last_status=Subquery(latest.values("status")[:1]),
        )
        .values("pk", "action", "monitor__application_id", "last_at", "last_rpo", "last_status")
    )
    probes_of: dict[int, list[dict[str, Any]]] = {}
    for row in probe_rows:
        probes_of.setdefault(row["monitor__application_id"], []).append(row)
    all_probe_ids = [row["pk"] for row in probe_rows]
    replication_ids = [r["pk"] for r in probe_rows if r["action"].startswith(("postgres.", "redis."))]
    availability = retention.series(
        all_probe_ids, Metric.AVAILABILITY, Resolution.DAY, since, now + timedelta(seconds=1)
    )
    rpo_hours = retention.series(
        replication_ids, Metric.RPO_SECONDS, Resolution.HOUR, now - timedelta(hours=2), now + timedelta(seconds=1)
    )
    open_counts = dict(
        SLAViolation.objects.filter(ended_at__isnull=True, application_id__in=app_ids)
        .values("application_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("application_id", "n")
    )
    open_plans = dict(
        SLAViolation.objects.filter(ended_at__isnull=True, plan__in=plans, application__isnull=True)
        .values("plan_id")
        .annotate(n=Count("id"))
        .order_by()
        .values_list("plan_id", "n")
    )

    def app_row(app: Any, estimate: dict[str, Any]) -> dict[str, Any]:
        target = targets.get(app.pk)
        rows = probes_of.get(app.pk, [])
        replication = [r for r in rows if r["pk"] in set(replication_ids)]
        measured = [r for r in replication if r["last_at"] is not None]
        known = [r["last_rpo"] for r in measured if r["last_rpo"] is not None]
        rpo = max(known) if known else None
        up = sum(p[2] for r in rows for p in availability.get(r["pk"], []))
        seen = sum(p[3] for r in rows for p in availability.get(r["pk"], []))
        percent = round(100.0 * up / seen, 4) if seen else None
        merged: dict[int, list[Any]] = {}
        for r in replication:
            for p in rpo_hours.get(r["pk"], []):
                have = merged.get(p[0])
                merged[p[0]] = p if have is None or p[2] > have[2] else have
        rto_now = estimate.get("per_application", {}).get(app.slug) if estimate.get("seconds") is not None else None
        flags: list[tuple[str, str]] = []
        if target is not None:
            flags += _against(rpo, target.rpo_target_seconds, "RPO")
            if percent is not None and percent < float(target.availability_target_percent):
                flags.append((HealthStatus.BREACHED, "availability below target"))
            flags += _against(rto_now, target.rto_target_seconds, "RTO estimate")
        if open_counts.get(app.pk):
            flags.append((HealthStatus.BREACHED, "open SLA violation"))
        if any(r["last_status"] == "unknown" for r in replication):
            flags.append((HealthStatus.AT_RISK, "a replication probe cannot tell"))
        status, reasons = worst(*(level for level, _ in flags)), [reason for _, reason in flags]
        return {
            "application": app.slug,
            "name": app.name,
            "tier": app.tier,
            "target_rto_seconds": target.rto_target_seconds if target else None,
            "target_rpo_seconds": target.rpo_target_seconds if target else None,
            "target_availability_percent": float(target.availability_target_percent) if target else None,
            "current_rpo_seconds": rpo,
            "rpo_measured_at": max((r["last_at"] for r in measured), default=None),
            "current_rto_estimate_seconds": rto_now,
            "availability_percent": percent,
            "trend": _trend(sorted(merged.values()), now),
            "monitored": bool(rows),
            "open_violations": open_counts.get(app.pk, 0),
            "status": status,
            "reasons": reasons,
        }

    running = active_failovers(plans)
    result = []
    for p in plans:
        apps = [a for a in p.applications.all() if a.pk in app_ids]
        if application is not None and not apps:
            continue
        estimate = rto_estimate(p, now, running.get(p.pk))
        prediction = predictions.predicted_rto(p)
        rows = [app_row(a, estimate) for a in sorted(apps, key=lambda a: (a.tier, a.slug))]
        flags = [(r["status"], f"{r['application']}: {r['status']}") for r in rows if r["status"] != HealthStatus.OK]
        flags += _against(estimate.get("seconds"), p.rto_seconds, "RTO estimate")
        if any(r["current_rpo_seconds"] is not None and r["current_rpo_seconds"] > p.rpo_seconds for r in rows):
            flags.append((HealthStatus.BREACHED, "an application's RPO above the plan's"))
        p90 = prediction.get("p90_seconds") if prediction.get("available") else None
        if p90 is not None and p90 > p.rto_seconds:
            flags.append((HealthStatus.AT_RISK, "ML P90 above target"))
        if open_plans.get(p.pk):
            flags.append((HealthStatus.BREACHED, "open SLA violation"))
        status, reasons = worst(*(level for level, _ in flags)), [reason for _, reason in flags]
        result.append(
            {
                "plan": p.plan_id,
                "name": p.name,
                "target_rto_seconds": p.rto_seconds,
                "target_rpo_seconds": p.rpo_seconds,
                "rto_estimate": estimate,
                "prediction": prediction,
                "status": status,
                "reasons": reasons,
                "applications": rows,
            }
        )
    return {"at": now, "period": period, "since": since, "plans": result}
