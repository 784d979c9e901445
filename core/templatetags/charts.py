"""Template tags drawing the server-rendered SVG charts of core/charts.py ({% load charts %}).

{% rto_chart rows %}                       rows: {"date", "actual", "target"} (seconds) per test
{% series_chart points metric="rpo_seconds" title="RPO" unit="s" target=60 %}
                                           points: dicts with a time ("t", "time", "timestamp", "at" or
                                           "bucket") and the metric's value (the key `metric`, else "value")
{% timeline_chart rows %}                  a what-if's applications
{% cost_chart points %}                    a what-if's cost over time
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from core import charts, formatting

register = template.Library()
TIME_KEYS = ("t", "time", "timestamp", "at", "bucket", "measured_at", "recorded_at")


def _time(point: dict[str, Any]) -> Any:
    return next((point[k] for k in TIME_KEYS if point.get(k) is not None), None)


@register.simple_tag
def rto_chart(rows: Iterable[dict[str, Any]], title: str = "RTO achieved vs target per test") -> SafeString:
    rows = [r for r in rows if r.get("actual") is not None and r.get("target") is not None]
    if not rows:
        return mark_safe(charts.empty_svg(title, "No DR test has measured an RTO yet."))  # noqa: S308 - escaped SVG
    stamps = [charts._ts(r["date"]) for r in rows]
    start, end = min(stamps), max(stamps)
    pad = max((end - start) * 0.05, 86400.0)
    return mark_safe(charts.rto_svg(rows, start - pad, min(end + pad, time.time() + pad), title=title))  # noqa: S308


@register.simple_tag
def series_chart(
    points: Iterable[dict[str, Any]] | None,
    metric: str = "value",
    title: str = "",
    unit: str = "",
    target: float | None = None,
    label: str = "",
    empty: str = "No measurement yet.",
) -> SafeString:
    clean = []
    for point in points or []:
        when = _time(point)
        value = point.get(metric, point.get("value"))
        if when is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
            clean.append({"t": when, "value": value})
    series = [{"label": label or metric, "points": clean}]
    return mark_safe(  # noqa: S308 - core.charts escapes every text it draws
        charts.series_svg(series, title=title or metric, unit=unit, target=target, empty=empty)
    )


@register.simple_tag
def timeline_chart(rows: Iterable[dict[str, Any]]) -> SafeString:
    return mark_safe(charts.timeline_svg(list(rows)))  # noqa: S308 - core.charts escapes every text it draws


@register.simple_tag
def cost_chart(points: Iterable[dict[str, Any]]) -> SafeString:
    prefix, _ = formatting.currency_parts()
    return mark_safe(charts.cost_svg(list(points), currency=prefix))  # noqa: S308 - escaped SVG
