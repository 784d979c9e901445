"""The plan page's RPO/availability chart slot: it reads GET /api/v1/dr/rto-rpo/history (the monitoring
endpoint) in-process, as the signed-in user, when the project has that endpoint; without it the slot says so.

The answer is normalised to flat points {"t", "<metric>": value} for the `series_chart` template tag
(core/templatetags/charts.py): a list, or {"results": [...]}, or {"series": [{"metric", "points": [...]}]};
each point carries its time ("t", "time", "timestamp", "at", "bucket") and values by metric name
("rpo_seconds", "availability_percent", …) or "value" with the series' "metric".
"""

from __future__ import annotations

import logging
from typing import Any

from django.http import HttpRequest, QueryDict
from django.urls import Resolver404, resolve

from plans.models import DRPlan

log = logging.getLogger(__name__)
HISTORY_PATH = "/api/v1/dr/rto-rpo/history"
METRIC_ALIASES = {"rpo": "rpo_seconds", "availability": "availability_percent"}


def normalise(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        if isinstance(data.get("series"), list):
            points = []
            for series in data["series"]:
                if not isinstance(series, dict):
                    continue
                metric = METRIC_ALIASES.get(str(series.get("metric")), str(series.get("metric")))
                for p in series.get("points") or []:
                    if isinstance(p, dict):
                        points.append({**p, metric: p.get("value", p.get(metric))})
            return points
        data = data.get("results", data.get("points", []))
    if not isinstance(data, list):
        return []
    out = []
    for p in data:
        if isinstance(p, dict):
            metric = METRIC_ALIASES.get(str(p.get("metric")), p.get("metric"))
            out.append({**p, metric: p["value"]} if metric and "value" in p else p)
    return out


def plan_history(request: HttpRequest, plan: DRPlan) -> list[dict[str, Any]] | None:
    """The plan's RPO/availability points, or None when the project has no history endpoint (or it refuses)."""
    try:
        match = resolve(HISTORY_PATH)
    except Resolver404:
        return None
    sub = HttpRequest()
    sub.method = "GET"
    sub.path = sub.path_info = HISTORY_PATH
    sub.GET = QueryDict(mutable=True)
    sub.GET["plan"] = plan.plan_id
    sub.META = {**request.META, "QUERY_STRING": sub.GET.urlencode(), "REQUEST_METHOD": "GET"}
    sub.user = request.user
    sub.session = getattr(request, "session", None)
    sub.COOKIES = request.COOKIES
    try:
        response = match.func(sub, *match.args, **match.kwargs)
    except Exception:  # an optional chart never breaks the plan page
        log.exception("rto-rpo history for %s", plan.plan_id)
        return None
    if getattr(response, "status_code", 500) != 200 or not hasattr(response, "data"):
        return None
    return normalise(response.data)
