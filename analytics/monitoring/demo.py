"""Demo history for the demo organisation's monitors (seed_demo): a month of hourly rollups and the last
hours of 1-minute raw samples, generated from a deterministic pattern per monitor (`history` in
drplan/demo/organisation.yaml: the RPO's usual level and spread, availability, latency), so the demo shows
RPO and availability over time before any probe ran. Only for probes with no history yet (idempotent)."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction

from analytics.monitoring import retention
from analytics.monitoring.choices import Resolution, SampleStatus
from analytics.monitoring.models import Monitor, ProbeSample, RollupState, SampleRollup

DAYS = 30
RAW_HOURS = 6


def _value(rng: random.Random, level: float, spread: float, hour: int) -> float:
    daily = 1 + 0.3 * math.sin(2 * math.pi * (hour % 24) / 24)  # busier in the day, more lag
    return max(0.0, level * daily + rng.gauss(0, spread))


def seed_history(monitor: Monitor, spec: dict[str, Any], now: datetime) -> int:
    """Generate the history of each probe of `monitor` that has none; returns the rows written."""
    level = float(spec.get("rpo_seconds", 0) or 0)
    spread = float(spec.get("rpo_spread", level / 4) or 0)
    lag_per_second = float(spec.get("lag_bytes_per_second", 0) or 0)
    down_per_day = float(spec.get("down_minutes_per_day", 0) or 0)
    latency = float(spec.get("latency_ms", 20) or 20)
    written = 0
    with transaction.atomic():
        state = retention.state()
        state = RollupState.objects.select_for_update().get(pk=state.pk)
        boundary = retention.floor(retention.epoch(now - timedelta(hours=RAW_HOURS)), retention.HOUR)
        if state.hours_until is not None:
            boundary = max(boundary, retention.epoch(state.hours_until))
        start = retention.floor(retention.epoch(now - timedelta(days=DAYS)), retention.HOUR)
        for probe in monitor.probes.all():
            if ProbeSample.objects.filter(probe=probe).exists() or SampleRollup.objects.filter(probe=probe).exists():
                continue
            rng = random.Random(f"{monitor.slug}/{probe.key}")  # noqa: S311 (demo figures, not secrets)
            replication = probe.action.startswith(("postgres.", "redis."))
            rollups = []
            for bucket in range(start, boundary, retention.HOUR):
                hour = bucket // retention.HOUR
                values = [_value(rng, level, spread, hour) for _ in range(6)]  # a few draws stand for the hour
                down = min(60, int(rng.random() < down_per_day / 24) * rng.randint(1, 3))
                rpo = {"count": 60, "sum": sum(values) * 10, "min": min(values), "max": max(values)}
                lat = [latency * (0.8 + 0.4 * rng.random()) for _ in range(3)]
                rollups.append(
                    SampleRollup(
                        probe=probe,
                        application_id=monitor.application_id,
                        resolution=Resolution.HOUR,
                        bucket=bucket,
                        samples=60,
                        up_count=60 - down,
                        known_count=60,
                        rpo_count=rpo["count"] if replication else 0,
                        rpo_sum=rpo["sum"] if replication else None,
                        rpo_min=rpo["min"] if replication else None,
                        rpo_max=rpo["max"] if replication else None,
                        lag_count=60 if replication and lag_per_second else 0,
                        lag_sum=rpo["sum"] * lag_per_second if replication and lag_per_second else None,
                        lag_min=int(rpo["min"] * lag_per_second) if replication and lag_per_second else None,
                        lag_max=int(rpo["max"] * lag_per_second) if replication and lag_per_second else None,
                        latency_count=60 - down,
                        latency_sum=sum(lat) / 3 * (60 - down),
                        latency_min=min(lat),
                        latency_max=max(lat),
                    )
                )
            SampleRollup.objects.bulk_create(rollups, batch_size=1000)
            samples = []
            for second in range(boundary, retention.epoch(now), 60):
                at = retention.at_epoch(second)
                up = rng.random() >= down_per_day / 1440
                rpo_value = _value(rng, level, spread, second // retention.HOUR) if replication and up else None
                samples.append(
                    ProbeSample(
                        probe=probe,
                        application_id=monitor.application_id,
                        at=at,
                        status=SampleStatus.OK if up else SampleStatus.UNKNOWN,
                        up=up,
                        rpo_seconds=round(rpo_value, 3) if rpo_value is not None else None,
                        lag_bytes=int(rpo_value * lag_per_second) if rpo_value is not None and lag_per_second else None,
                        latency_ms=round(latency * (0.8 + 0.4 * rng.random()), 1) if up else None,
                        error="" if up else "demo: no answer (connection refused)",
                    )
                )
            ProbeSample.objects.bulk_create(samples, batch_size=1000)
            written += len(rollups) + len(samples)
        if state.hours_until is None:
            state.hours_until = retention.at_epoch(boundary)
            state.save(update_fields=["hours_until"])
    return written
