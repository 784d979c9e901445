"""The plan page's RPO/availability chart: the plan's monitoring history (analytics/monitoring/retention.py, what
GET /api/v1/dr/rto-rpo/history serves) over the last 30 days at hourly resolution, as flat points
{"t": an aware datetime, "rpo_seconds" | "availability_percent": value} for the `series_chart` template tag
(core/templatetags/charts.py). Several probes in one hour: the worst of them (the highest RPO, the lowest
availability), which is what a DR manager must see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone

from analytics.monitoring import retention
from analytics.monitoring.choices import Metric, Resolution
from analytics.monitoring.models import Probe
from plans.models import DRPlan

PERIOD = timedelta(days=30)
REPLICATION = Q(action__startswith="postgres.") | Q(action__startswith="redis.")


def plan_history(plan: DRPlan) -> list[dict[str, Any]]:
    """The plan's hourly RPO (worst per hour) and availability (lowest per hour) points, oldest first."""
    probes = Probe.objects.filter(Q(monitor__plan=plan) | Q(monitor__application__plans=plan)).distinct()
    end = timezone.now()
    start = end - PERIOD
    by_time: dict[float, dict[str, Any]] = {}
    for metric, value_column, pick, only in (
        (Metric.RPO_SECONDS, "max", max, REPLICATION),
        (Metric.AVAILABILITY, "percent", min, Q()),
    ):
        ids = list(probes.filter(only).values_list("pk", flat=True))
        columns = retention.columns(metric, Resolution.HOUR)
        key = "rpo_seconds" if metric == Metric.RPO_SECONDS else "availability_percent"
        for points in retention.series(ids, metric, Resolution.HOUR, start, end).values():
            for point in points:
                row = dict(zip(columns, point, strict=False))
                value = row.get(value_column)
                if value is None:
                    continue
                slot = by_time.setdefault(row["t"], {"t": datetime.fromtimestamp(row["t"], tz=UTC)})
                slot[key] = pick(slot[key], value) if key in slot else value
    return [by_time[t] for t in sorted(by_time)]
