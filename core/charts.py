"""Server-rendered SVG charts, shared by the web pages and the compliance PDFs (WeasyPrint draws inline SVG).

Plain SVG strings, no plotting library and no script: a page shows them as they are, a screen reader reads
each chart's <title> and <desc>, and every mark carries a <title> with its figures (shown on hover).

- `rto_svg`: measured RTO per test (dots: green within the target, red over) against the target (blue
  steps), over a time window.
- `series_svg`: one or more time series (e.g. RPO seconds and availability %) with optional target line.
- `timeline_svg`: a what-if recovery timeline, one bar per application from the disaster to its P50
  recovery and a lighter extension to its P90.
- `cost_svg`: the cost accrued over the outage (P50 and P90 lines).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

GREEN, RED, GREY, INK, TARGET, AMBER = "#1a7f37", "#c62828", "#9aa4ae", "#1f2933", "#3559a8", "#b26a00"
GRID = "#e4e7eb"
FONT = 'font-family="DejaVu Sans, sans-serif" font-size="9"'


def nice_max(value: float) -> float:
    """A round axis maximum at or above `value` (4 grid steps)."""
    for step in (0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 240, 480, 960, 1440):
        if value <= step * 4:
            return step * 4
    magnitude = 10 ** (len(str(int(value / 4))) - 1)
    return -(-value // (4 * magnitude)) * 4 * magnitude


def open_svg(width: int, height: int, title: str, desc: str = "", css_class: str = "chart") -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="{css_class}" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" {FONT}><title>{escape(title)}</title>'
        + (f"<desc>{escape(desc)}</desc>" if desc else "")
    )


def empty_svg(title: str, message: str, width: int = 520, height: int = 90) -> str:
    return (
        open_svg(width, height, title, message)
        + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" fill="{GREY}">{escape(message)}</text></svg>'
    )


def month_ticks(start: float, end: float) -> list[tuple[str, float]]:
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


def duration_label(seconds: float) -> str:
    """Short axis label: 45 s, 12 min, 3 h, 2 d."""
    if seconds < 60:
        return f"{seconds:g} s"
    if seconds < 3600:
        return f"{seconds / 60:g} min"
    if seconds < 86400 * 2:
        return f"{seconds / 3600:g} h"
    return f"{seconds / 86400:g} d"


def _ts(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else datetime.fromisoformat(str(value)).timestamp()


# --- RTO achieved vs target --------------------------------------------------------------------------------


def rto_svg(
    rows: Sequence[dict[str, Any]], start: float, end: float, *, title: str = "RTO achieved vs target per test"
) -> str:
    """rows: {"date": ISO text, "actual": seconds, "target": seconds}; start/end: the window (POSIX seconds)."""
    width, height, left, right, top, bottom = 520, 170, 48, 12, 12, 30
    if not rows:
        return empty_svg(title, "No DR test has measured an RTO yet.")
    values = [r["actual"] / 60 for r in rows] + [r["target"] / 60 for r in rows]
    y_max = nice_max(max(values) if values else 1)
    span = max(end - start, 1)

    def x(when: str) -> float:
        t = min(max(_ts(when), start), end)
        return left + (t - start) / span * (width - left - right)

    def y(minutes: float) -> float:
        return top + (1 - minutes / y_max) * (height - top - bottom)

    met = sum(1 for r in rows if r["actual"] <= r["target"])
    parts = [open_svg(width, height, title, f"{len(rows)} tests, {met} within the RTO target.")]
    for i in range(5):
        value = y_max * i / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{y(value) + 3:.1f}" text-anchor="end" fill="{INK}">{value:g} min</text>'
        )
    for label, t in month_ticks(start, end):
        px = left + (t - start) / span * (width - left - right)
        parts.append(
            f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{height - bottom}" y2="{height - bottom + 3}" stroke="{INK}"/>'
            f'<text x="{px:.1f}" y="{height - bottom + 13}" text-anchor="middle" fill="{INK}">{label}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" stroke="{INK}"/>'
    )
    ordered = sorted(rows, key=lambda r: _ts(r["date"]))
    target_path: list[str] = []
    for i, row in enumerate(ordered):
        px, py = x(row["date"]), y(row["target"] / 60)
        if i == 0:
            target_path.append(f"M{left} {py:.1f} L{px:.1f} {py:.1f}")
        else:
            target_path.append(f"L{px:.1f} {last_y(target_path):.1f} L{px:.1f} {py:.1f}")
    target_path.append(f"L{width - right} {y(ordered[-1]['target'] / 60):.1f}")
    parts.append(f'<path d="{" ".join(target_path)}" fill="none" stroke="{TARGET}" stroke-width="1.5"/>')
    line = " ".join(f"{x(r['date']):.1f},{y(r['actual'] / 60):.1f}" for r in ordered)
    parts.append(f'<polyline points="{line}" fill="none" stroke="{GREY}" stroke-width="1"/>')
    for row in ordered:
        colour = GREEN if row["actual"] <= row["target"] else RED
        label = escape(
            f"{str(row['date'])[:10]}: {row['actual'] / 60:.1f} min (target {row['target'] / 60:g})"
            + (" — within target" if row["actual"] <= row["target"] else " — over target")
        )
        parts.append(
            f'<circle class="rto-point" cx="{x(row["date"]):.1f}" cy="{y(row["actual"] / 60):.1f}" r="3.5" '
            f'fill="{colour}"><title>{label}</title></circle>'
        )
    parts.append(
        f'<g transform="translate({width - 190},{top})"><line x1="0" x2="14" y1="5" y2="5" stroke="{TARGET}" '
        f'stroke-width="1.5"/><text x="18" y="8" fill="{INK}">target</text>'
        f'<circle cx="66" cy="5" r="3.5" fill="{GREEN}"/><text x="72" y="8" fill="{INK}">met</text>'
        f'<circle cx="104" cy="5" r="3.5" fill="{RED}"/><text x="110" y="8" fill="{INK}">over target</text></g>'
    )
    parts.append("</svg>")
    return "".join(parts)


def last_y(path: list[str]) -> float:
    """The y of the last point of an SVG path built by rto_svg (the previous target level)."""
    return float(path[-1].split()[-1])


# --- Time series ---------------------------------------------------------------------------------------


def series_svg(
    series: Sequence[dict[str, Any]],
    *,
    title: str,
    unit: str = "",
    target: float | None = None,
    target_label: str = "target",
    empty: str = "No measurement yet.",
) -> str:
    """series: [{"label", "points": [{"t": ISO/datetime, "value": number}], "colour"?}]; one y axis."""
    width, height, left, right, top, bottom = 520, 170, 54, 12, 14, 30
    points = [(p["t"], float(p["value"])) for s in series for p in s["points"] if p.get("value") is not None]
    if not points:
        return empty_svg(title, empty)
    times = [_ts(t) for t, _ in points]
    start, end = min(times), max(times)
    span = max(end - start, 1)
    values = [v for _, v in points] + ([target] if target is not None else [])
    low = min(0.0, min(values))
    high = max(values)
    if unit == "%":
        low = max(0.0, min(values) - (high - min(values)) * 0.2 - 0.01)
        high = min(100.0, high + (high - low) * 0.1) if high > low else 100.0
    else:
        high = nice_max(high or 1)
    rng = max(high - low, 1e-9)

    def x(t: float) -> float:
        return left + (t - start) / span * (width - left - right)

    def y(v: float) -> float:
        return top + (1 - (v - low) / rng) * (height - top - bottom)

    parts = [open_svg(width, height, title, f"{len(points)} points from {series[0].get('label', '')}.")]
    for i in range(5):
        value = low + rng * i / 4
        text = f"{value:.3g}{unit}" if unit in ("%", "") else (duration_label(value) if unit == "s" else f"{value:g}")
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{y(value) + 3:.1f}" text-anchor="end" fill="{INK}">{escape(text)}</text>'
        )
    for t, label in ((start, datetime.fromtimestamp(start)), (end, datetime.fromtimestamp(end))):
        parts.append(
            f'<text x="{x(t):.1f}" y="{height - bottom + 13}" text-anchor="{"start" if t == start else "end"}" '
            f'fill="{INK}">{label:%d %b %H:%M}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{width - right}" y1="{height - bottom}" y2="{height - bottom}" stroke="{INK}"/>'
    )
    if target is not None:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(target):.1f}" y2="{y(target):.1f}" stroke="{TARGET}" '
            f'stroke-dasharray="4 3"><title>{escape(target_label)}: {target:g}{escape(unit)}</title></line>'
        )
    palette = [AMBER, GREEN, TARGET, RED]
    for i, s in enumerate(series):
        colour = s.get("colour") or palette[i % len(palette)]
        pts = sorted((_ts(p["t"]), float(p["value"])) for p in s["points"] if p.get("value") is not None)
        if not pts:
            continue
        line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
        parts.append(
            f'<polyline class="series" points="{line}" fill="none" stroke="{colour}" stroke-width="1.5">'
            f"<title>{escape(s.get('label', ''))}</title></polyline>"
        )
        parts.append(f'<text x="{left + 6 + 120 * i}" y="{top}" fill="{colour}">{escape(s.get("label", ""))}</text>')
    parts.append("</svg>")
    return "".join(parts)


# --- What-if: recovery timeline and cost over time -----------------------------------------------------------


def timeline_svg(rows: Sequence[dict[str, Any]], *, title: str = "Recovery timeline") -> str:
    """rows: {"application", "down_because", "recovered_after_p50_seconds", "recovered_after_p90_seconds"}."""
    if not rows:
        return empty_svg(title, "Nothing goes down.")
    label_w, right, top, row_h, bottom = 150, 16, 22, 20, 30
    width = 720
    height = top + row_h * len(rows) + bottom
    end = nice_max(max(float(r["recovered_after_p90_seconds"]) for r in rows) or 60)
    plot = width - label_w - right

    def x(seconds: float) -> float:
        return label_w + seconds / end * plot

    parts = [
        open_svg(
            width,
            height,
            title,
            f"{len(rows)} applications down; the last recovers after "
            f"{duration_label(max(float(r['recovered_after_p50_seconds']) for r in rows))} (P50).",
            "chart timeline",
        )
    ]
    for i in range(5):
        t = end * i / 4
        parts.append(
            f'<line x1="{x(t):.1f}" x2="{x(t):.1f}" y1="{top - 4}" y2="{height - bottom}" stroke="{GRID}"/>'
            f'<text x="{x(t):.1f}" y="{height - bottom + 13}" text-anchor="middle" fill="{INK}">'
            f"{escape(duration_label(t))}</text>"
        )
    parts.append(
        f'<text x="{label_w}" y="10" fill="{INK}">0 = the disaster; solid to P50, light to P90 recovery</text>'
    )
    for i, r in enumerate(rows):
        y = top + i * row_h
        p50, p90 = float(r["recovered_after_p50_seconds"]), float(r["recovered_after_p90_seconds"])
        colour = RED if r["down_because"] == "lost" else AMBER
        name = escape(r["application"])
        why = "lost" if r["down_because"] == "lost" else "down through a dependency"
        parts.append(
            f'<g class="timeline-row" data-application="{name}">'
            f'<text x="{label_w - 6}" y="{y + 13}" text-anchor="end" fill="{INK}">{name}</text>'
            f'<rect x="{x(0):.1f}" y="{y + 3}" width="{max(x(p90) - x(0), 1):.1f}" height="{row_h - 6}" '
            f'fill="{colour}" fill-opacity="0.3"/>'
            f'<rect x="{x(0):.1f}" y="{y + 3}" width="{max(x(p50) - x(0), 1):.1f}" height="{row_h - 6}" '
            f'fill="{colour}"><title>{name} ({why}): back after {escape(duration_label(round(p50)))} (P50), '
            f"{escape(duration_label(round(p90)))} (P90)</title></rect></g>"
        )
    parts.append(
        f'<g transform="translate({width - 260},{height - 10})">'
        f'<rect width="10" height="8" y="-7" fill="{RED}"/><text x="14" fill="{INK}">lost</text>'
        f'<rect x="44" width="10" height="8" y="-7" fill="{AMBER}"/>'
        f'<text x="58" fill="{INK}">down through a dependency</text></g></svg>'
    )
    return "".join(parts)


def cost_svg(
    points: Sequence[dict[str, Any]], *, title: str = "Cost accrued over the outage", currency: str = ""
) -> str:
    """points: {"seconds", "cost_p50", "cost_p90"} (cumulative, as text or numbers)."""
    if len(points) < 2:
        return empty_svg(title, "No business process is affected: no cost is priced.")
    width, height, left, right, top, bottom = 720, 190, 78, 16, 16, 30
    end = max(float(p["seconds"]) for p in points) or 1
    high = nice_max(max(float(p["cost_p90"]) for p in points) or 1)

    def x(s: float) -> float:
        return left + s / end * (width - left - right)

    def y(v: float) -> float:
        return top + (1 - v / high) * (height - top - bottom)

    total50 = float(points[-1]["cost_p50"])
    parts = [open_svg(width, height, title, f"{currency}{total50:,.0f} by P50 recovery.", "chart cost")]
    for i in range(5):
        v = high * i / 4
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="{GRID}"/>'
            f'<text x="{left - 4}" y="{y(v) + 3:.1f}" text-anchor="end" fill="{INK}">{escape(currency)}{v:,.0f}</text>'
        )
        t = end * i / 4
        parts.append(
            f'<text x="{x(t):.1f}" y="{height - bottom + 13}" text-anchor="middle" fill="{INK}">'
            f"{escape(duration_label(round(t)))}</text>"
        )
    for key, colour, label in (("cost_p90", AMBER, "P90 recovery"), ("cost_p50", RED, "P50 recovery")):
        line = " ".join(f"{x(float(p['seconds'])):.1f},{y(float(p[key])):.1f}" for p in points)
        parts.append(
            f'<polyline class="cost-line" points="{line}" fill="none" stroke="{colour}" stroke-width="1.8">'
            f"<title>{label}: {escape(currency)}{float(points[-1][key]):,.2f}</title></polyline>"
        )
    parts.append(
        f'<g transform="translate({left + 8},{top + 4})"><line x2="14" stroke="{RED}" stroke-width="2"/>'
        f'<text x="18" y="3" fill="{INK}">P50</text><line x1="50" x2="64" stroke="{AMBER}" stroke-width="2"/>'
        f'<text x="68" y="3" fill="{INK}">P90</text></g>'
        f'<line x1="{left}" x2="{width - right}" y1="{y(0)}" y2="{y(0)}" stroke="{INK}"/></svg>'
    )
    return "".join(parts)
