"""The cost of downtime: one model for the what-if scenarios, the impact analyses and the console's meter.

A business process loses money at a rate that depends on how long the outage has lasted and on when it is:

    rate(t) = base(elapsed) x weight(weekday, hour of the wall clock at t)

- `base(elapsed)` comes from the process's **cost curve**, a list of breakpoints
  `{"from_hours": h, "cost_per_hour": c}` or `{"from_hours": h, "multiplier": m}` (m x the process's revenue
  per hour). A breakpoint holds from its hour until the next one; the first starts at 0. An empty curve is
  the revenue per hour throughout. Escalation (penalties start after 4 h, customers leave after a day) is
  a later breakpoint with a higher rate.
- `weight` comes from the **weekly profile**, a 7x24 table of non-negative factors (Monday first, hours
  0-23 of the organisation's time zone, settings.TIME_ZONE). An empty profile weighs every hour 1.

The cost of an outage from `start` lasting `seconds` is the integral of the rate: the integrand is constant
between breakpoints and whole wall-clock hours, so the sum over those segments is exact. When no start is
given (an analysis "in general") the weight is the profile's weekly mean.

Plain functions over plain values; nothing here reads the database. Failover's console may not import
analytics (docs/architecture.md, "Layers"), so the provider of a plan's cost model is a seam: analytics
installs it from drplan/wiring.py (the business processes the plan's applications carry); without one, or
when the plan has no processes, the plan's flat `downtime_cost_per_hour` is the model.
"""

from __future__ import annotations

import bisect
import itertools
import math
import zoneinfo
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")
DAYS, HOURS = 7, 24
MAX_BREAKPOINTS = 50
MAX_CURVE_HOURS = 24 * 366  # a breakpoint later than a year names no outage anyone plans for
MAX_OUTAGE_SECONDS = 366 * 24 * 3600
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


class CostModelError(ValueError):
    """A curve or profile that cannot be used; `field` names the part (e.g. "cost_curve[2].from_hours")."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        raise CostModelError(f"{where} must be a number.", where)
    number = float(value)
    if not math.isfinite(number) or number < 0:
        raise CostModelError(f"{where} must be a finite number of at least 0.", where)
    return number


def validate_curve(curve: Any, name: str = "cost_curve") -> list[dict[str, float]]:
    """The curve in its stored form, or CostModelError naming the breakpoint and key at fault."""
    if not isinstance(curve, list):
        raise CostModelError(f"{name} must be a list of breakpoints.", name)
    if len(curve) > MAX_BREAKPOINTS:
        raise CostModelError(f"{name} has more than {MAX_BREAKPOINTS} breakpoints.", name)
    clean: list[dict[str, float]] = []
    for i, point in enumerate(curve):
        where = f"{name}[{i}]"
        if not isinstance(point, dict):
            raise CostModelError(f"{where} must be an object.", where)
        unknown = set(point) - {"from_hours", "cost_per_hour", "multiplier"}
        if unknown:
            raise CostModelError(f"{where} has unknown keys: {', '.join(sorted(unknown))}.", where)
        if "from_hours" not in point:
            raise CostModelError(f"{where}.from_hours is required.", f"{where}.from_hours")
        hours = _number(point["from_hours"], f"{where}.from_hours")
        if hours > MAX_CURVE_HOURS:
            raise CostModelError(f"{where}.from_hours must be at most {MAX_CURVE_HOURS}.", f"{where}.from_hours")
        if i == 0 and hours != 0:
            raise CostModelError(
                f"{where}.from_hours must be 0: the curve starts with the outage.", f"{where}.from_hours"
            )
        if i and hours <= clean[-1]["from_hours"]:
            raise CostModelError(
                f"{where}.from_hours must be later than the breakpoint before it.", f"{where}.from_hours"
            )
        kinds = [k for k in ("cost_per_hour", "multiplier") if k in point]
        if len(kinds) != 1:
            raise CostModelError(f"{where} needs exactly one of cost_per_hour or multiplier.", where)
        clean.append({"from_hours": hours, kinds[0]: _number(point[kinds[0]], f"{where}.{kinds[0]}")})
    return clean


def validate_profile(profile: Any, name: str = "weekly_profile") -> list[list[float]]:
    """A 7x24 table of non-negative weights (or [] for flat), or CostModelError naming the cell."""
    if not isinstance(profile, list):
        raise CostModelError(f"{name} must be a list of 7 lists of 24 weights (or empty).", name)
    if not profile:
        return []
    if len(profile) != DAYS:
        raise CostModelError(f"{name} must have 7 rows, Monday first.", name)
    table = []
    for d, row in enumerate(profile):
        if not isinstance(row, list) or len(row) != HOURS:
            raise CostModelError(f"{name}[{d}] must be a list of 24 weights (hours 0-23).", f"{name}[{d}]")
        table.append([_number(w, f"{name}[{d}][{h}]") for h, w in enumerate(row)])
    return table


def business_hours_profile(
    *,
    open_hour: int = 8,
    close_hour: int = 18,
    weekday: float = 1.0,
    evening: float = 1.0,
    weekend: float = 1.0,
    weekend_days: Sequence[int] = (5, 6),
) -> list[list[float]]:
    """A 7x24 table from a few figures: `weekday` during [open_hour, close_hour) on working days, `evening`
    outside those hours on working days, `weekend` all day on `weekend_days` (0 = Monday)."""
    if not (0 <= open_hour < close_hour <= HOURS):
        raise CostModelError("open_hour must come before close_hour, both within 0-24.", "open_hour")
    return [
        [weekend if d in weekend_days else (weekday if open_hour <= h < close_hour else evening) for h in range(HOURS)]
        for d in range(DAYS)
    ]


@dataclass(frozen=True)
class ProcessCost:
    """The cost model of one business process (or of a plan's flat rate)."""

    name: str
    revenue_per_hour: float
    curve: tuple[tuple[float, float], ...] = ()  # (from_hours, base cost per hour), ascending, first at 0
    profile: tuple[tuple[float, ...], ...] = ()  # 7x24, or () for flat

    @classmethod
    def of(
        cls, name: str, revenue_per_hour: Any, curve: Iterable[dict[str, Any]] = (), profile: Any = ()
    ) -> ProcessCost:
        revenue = float(revenue_per_hour or 0)
        points = tuple(
            (
                float(p["from_hours"]),
                float(p["cost_per_hour"]) if "cost_per_hour" in p else revenue * float(p["multiplier"]),
            )
            for p in curve
        )
        return cls(name, revenue, points, tuple(tuple(float(w) for w in row) for row in (profile or ())))

    def base_rate(self, elapsed_hours: float) -> float:
        """Cost per hour after `elapsed_hours` of outage, before the weekday/hour weight."""
        rate = self.revenue_per_hour
        for start, value in self.curve:
            if elapsed_hours + 1e-12 >= start:
                rate = value
            else:
                break
        return rate

    def weight(self, weekday: int, hour: int) -> float:
        return self.profile[weekday][hour] if self.profile else 1.0

    @property
    def mean_weight(self) -> float:
        if not self.profile:
            return 1.0
        return sum(sum(row) for row in self.profile) / (DAYS * HOURS)

    def _breaks(self, seconds: float) -> list[float]:
        return [start * 3600 for start, _ in self.curve if 0 < start * 3600 < seconds]

    def cost(self, seconds: float, start: datetime | None = None, tz: zoneinfo.ZoneInfo | None = None) -> float:
        """The cost of an outage of `seconds` that began at `start` (aware); no start: the weekly mean weight."""
        return self.cumulative(seconds, start, tz)[-1][1]

    def cumulative(
        self, seconds: float, start: datetime | None = None, tz: zoneinfo.ZoneInfo | None = None
    ) -> list[tuple[float, float]]:
        """(seconds into the outage, cost so far) at every point where the rate changes, up to `seconds`, in
        one pass: the cost between two points is linear, so a chart or a ticking meter interpolates exactly."""
        seconds = min(max(0.0, float(seconds)), MAX_OUTAGE_SECONDS)
        cuts = {0.0, seconds, *self._breaks(seconds)}
        zone = tz or default_zone()
        weighted = start is not None and bool(self.profile)
        if weighted:
            local = start.astimezone(zone)
            into_hour = local.minute * 60 + local.second + local.microsecond / 1e6
            cuts.update(_frange(3600 - into_hour, seconds, 3600))
        ordered = sorted(cuts)
        out, total = [(ordered[0], 0.0)], 0.0
        for a, b in itertools.pairwise(ordered):
            if weighted:
                wall = (start + timedelta(seconds=a)).astimezone(zone)
                weight = self.weight(wall.weekday(), wall.hour)
            else:
                weight = self.mean_weight
            total += self.base_rate(a / 3600) * weight * (b - a) / 3600
            out.append((b, total))
        return out


def interpolate(points: Sequence[tuple[float, float]], t: float) -> float:
    """The cumulative cost at `t` from `cumulative()`'s points (flat after the last one)."""
    if not points or t <= points[0][0]:
        return 0.0
    if t >= points[-1][0]:
        return points[-1][1]
    i = bisect.bisect_right([p[0] for p in points], t)
    (a, ca), (b, cb) = points[i - 1], points[i]
    return ca + (cb - ca) * (t - a) / (b - a) if b > a else cb


def _frange(first: float, stop: float, step: float) -> Iterable[float]:
    value = first
    while value < stop:
        if value > 0:
            yield value
        value += step


def default_zone() -> zoneinfo.ZoneInfo:
    from django.conf import settings

    return zoneinfo.ZoneInfo(settings.TIME_ZONE)


def money(value: float | Decimal) -> Decimal:
    """Rounded to cents (half up), as stored and shown."""
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class CostModel:
    """Several processes down together for the same time (the console's meter: a plan's execution)."""

    processes: tuple[ProcessCost, ...] = field(default_factory=tuple)
    source: str = "none"  # business_processes | plan_rate | none

    def cost(self, seconds: float, start: datetime | None = None) -> Decimal:
        return money(sum(p.cost(seconds, start) for p in self.processes))

    def rate_now(self, seconds: float, start: datetime | None = None) -> Decimal:
        """Cost per hour at `seconds` into the outage."""
        at = None if start is None else start + timedelta(seconds=seconds)
        rate = 0.0
        for p in self.processes:
            w = p.mean_weight if at is None or not p.profile else p.weight(*_wall(at))
            rate += p.base_rate(seconds / 3600) * w
        return money(rate)

    def points(self, seconds: float, start: datetime | None = None) -> list[tuple[float, str]]:
        """Cumulative cost points (seconds, cost as text) where the total rate changes, for the meter's ticking."""
        curves = [p.cumulative(seconds, start) for p in self.processes]
        cuts = sorted({0.0, max(0.0, seconds), *(t for curve in curves for t, _ in curve)})
        return [(t, str(money(sum(interpolate(curve, t) for curve in curves)))) for t in cuts]


def _wall(at: datetime) -> tuple[int, int]:
    local = at.astimezone(default_zone())
    return local.weekday(), local.hour


# --- The seam: a plan's cost model ------------------------------------------------------------------------

Provider = Callable[[Any], CostModel | None]
_provider: Provider | None = None


def install(provider: Provider | None) -> None:
    global _provider
    _provider = provider


def plan_cost_model(plan: Any) -> CostModel:
    """The installed provider's model for the plan (its business processes), else the plan's flat rate."""
    if plan is None:
        return CostModel()
    if _provider is not None:
        model = _provider(plan)
        if model is not None and model.processes:
            return model
    rate = plan.downtime_cost_per_hour
    if not rate:
        return CostModel()
    return CostModel((ProcessCost(plan.plan_id, float(rate)),), source="plan_rate")
