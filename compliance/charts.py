"""Server-rendered SVG charts for the report (WeasyPrint draws inline SVG): RTO actual vs target over time, one
small chart per plan (core.charts.rto_svg, which the web pages draw too), and the DR test pass rate by quarter.
Plain SVG strings, no plotting library."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from html import escape
from typing import Any

from core import charts
from core.charts import GREEN, GREY, INK, RED


def rto_charts(points: list[dict[str, Any]], window_start: str, window_end: str) -> list[dict[str, str]]:
    """One SVG per plan: measured RTO (dots: green within target, red over) and the target (blue steps)."""
    by_plan: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for point in points:
        by_plan[point["plan_id"]].append(point)
    start = datetime.fromisoformat(window_start).timestamp()
    end = datetime.fromisoformat(window_end).timestamp()
    return [
        {"plan_id": plan_id, "svg": charts.rto_svg(rows, start, end, title=f"RTO achieved vs target: {plan_id}")}
        for plan_id, rows in sorted(by_plan.items())
    ]


def pass_rate_chart(quarters: list[dict[str, Any]]) -> str:
    """Bars of the share of DR tests passed per quarter, labelled passed/performed."""
    width, height, left, top, bottom = 520, 170, 40, 14, 30
    n = max(len(quarters), 1)
    slot = (width - left - 10) / n
    bar = min(46, slot * 0.6)

    def y(share: float) -> float:
        return top + (1 - share) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="DejaVu Sans, sans-serif" font-size="9">'
    ]
    for share in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{left}" x2="{width - 10}" y1="{y(share):.1f}" y2="{y(share):.1f}" stroke="#e4e7eb"/>'
            f'<text x="{left - 4}" y="{y(share) + 3:.1f}" text-anchor="end" fill="{INK}">{share:.0%}</text>'
        )
    for i, q in enumerate(quarters):
        share = q["passed"] / q["tests"] if q["tests"] else 0
        cx = left + slot * (i + 0.5)
        colour = GREEN if share >= 0.999 else ("#d98e04" if share >= 0.5 else RED)
        parts.append(
            f'<rect x="{cx - bar / 2:.1f}" y="{y(share):.1f}" width="{bar:.1f}" height="{y(0) - y(share):.1f}" '
            f'fill="{colour}"/>'
            f'<text x="{cx:.1f}" y="{y(share) - 3:.1f}" text-anchor="middle" fill="{INK}">'
            f"{q['passed']}/{q['tests']}</text>"
            f'<text x="{cx:.1f}" y="{height - bottom + 13}" text-anchor="middle" fill="{INK}">{escape(q["quarter"])}'
            "</text>"
        )
    if not quarters:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{GREY}">no DR test</text>')
    parts.append(f'<line x1="{left}" x2="{width - 10}" y1="{y(0)}" y2="{y(0)}" stroke="{INK}"/></svg>')
    return "".join(parts)
