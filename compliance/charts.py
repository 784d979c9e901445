"""Server-rendered SVG charts for the report (WeasyPrint draws inline SVG): RTO actual vs target over time, one
small chart per plan, and the DR test pass rate by quarter. Plain SVG strings, no plotting library."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from html import escape
from typing import Any

GREEN, RED, GREY, INK, TARGET = "#1a7f37", "#c62828", "#9aa4ae", "#1f2933", "#3559a8"


def _minutes(value: float) -> float:
    return value / 60


def _nice_max(value: float) -> float:
    for step in (0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 960, 1440):
        if value <= step * 4:
            return step * 4
    return value * 1.1


def rto_charts(points: list[dict[str, Any]], window_start: str, window_end: str) -> list[dict[str, str]]:
    """One SVG per plan: measured RTO (dots: green within target, red over) and the target (blue steps)."""
    by_plan: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for point in points:
        by_plan[point["plan_id"]].append(point)
    start = datetime.fromisoformat(window_start).timestamp()
    end = datetime.fromisoformat(window_end).timestamp()
    return [{"plan_id": plan_id, "svg": _rto_svg(rows, start, end)} for plan_id, rows in sorted(by_plan.items())]


def _rto_svg(rows: list[dict[str, Any]], start: float, end: float) -> str:
    width, height, left, right, top, bottom = 520, 170, 48, 12, 12, 30
    values = [_minutes(r["actual"]) for r in rows] + [_minutes(r["target"]) for r in rows]
    y_max = _nice_max(max(values) if values else 1)
    span = max(end - start, 1)

    def x(when: str) -> float:
        t = min(max(datetime.fromisoformat(when).timestamp(), start), end)
        return left + (t - start) / span * (width - left - right)

    def y(minutes: float) -> float:
        return top + (1 - minutes / y_max) * (height - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        'font-family="DejaVu Sans, sans-serif" font-size="9">'
    ]
    for i in range(5):
        value = y_max * i / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e4e7eb"/>'
            f'<text x="{left - 4}" y="{y(value) + 3:.1f}" text-anchor="end" fill="{INK}">{value:g} min</text>'
        )
    months = _month_ticks(start, end)
    for label, t in months:
        px = left + (t - start) / span * (width - left - right)
        parts.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{height - bottom}" y2="{height - bottom + 3}" stroke="{INK}"/>'
            f'<text x="{px:.1f}" y="{height - bottom + 13}" text-anchor="middle" fill="{INK}">{label}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" stroke="{INK}"/>'
    )
    ordered = sorted(rows, key=lambda r: r["date"])
    target_path = []
    for i, row in enumerate(ordered):
        px, py = x(row["date"]), y(_minutes(row["target"]))
        if i == 0:
            target_path.append(f"M{left} {py:.1f} L{px:.1f} {py:.1f}")
        else:
            target_path.append(f"L{px:.1f} {target_path_y(target_path):.1f} L{px:.1f} {py:.1f}")
    if ordered:
        target_path.append(f"L{width - right} {y(_minutes(ordered[-1]['target'])):.1f}")
        parts.append(f'<path d="{" ".join(target_path)}" fill="none" stroke="{TARGET}" stroke-width="1.5"/>')
        line = " ".join(f"{x(r['date']):.1f},{y(_minutes(r['actual'])):.1f}" for r in ordered)
        parts.append(f'<polyline points="{line}" fill="none" stroke="{GREY}" stroke-width="1"/>')
    for row in ordered:
        colour = GREEN if row["actual"] <= row["target"] else RED
        title = escape(f"{row['date'][:10]}: {_minutes(row['actual']):.1f} min (target {_minutes(row['target']):g})")
        parts.append(
            f'<circle cx="{x(row["date"]):.1f}" cy="{y(_minutes(row["actual"])):.1f}" r="3.5" fill="{colour}">'
            f"<title>{title}</title></circle>"
        )
    parts.append(
        f'<g transform="translate({width - 190},{top})"><line x1="0" x2="14" y1="5" y2="5" stroke="{TARGET}" '
        f'stroke-width="1.5"/><text x="18" y="8" fill="{INK}">target</text>'
        f'<circle cx="66" cy="5" r="3.5" fill="{GREEN}"/><text x="72" y="8" fill="{INK}">met</text>'
        f'<circle cx="104" cy="5" r="3.5" fill="{RED}"/><text x="110" y="8" fill="{INK}">over target</text></g>'
    )
    parts.append("</svg>")
    return "".join(parts)


def target_path_y(path: list[str]) -> float:
    """The y of the last point of an SVG path built by _rto_svg (the previous target level)."""
    return float(path[-1].split()[-1])


def _month_ticks(start: float, end: float) -> list[tuple[str, float]]:
    first = datetime.fromtimestamp(start)
    year, month = first.year, first.month
    ticks = []
    while True:
        month += 1
        if month > 12:
            year, month = year + 1, 1
        t = datetime(year, month, 1).timestamp()
        if t >= end:
            break
        ticks.append((datetime(year, month, 1).strftime("%b %y" if month == 1 else "%b"), t))
    step = max(1, len(ticks) // 12)
    return ticks[::step]


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
