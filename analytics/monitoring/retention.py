"""Retention and downsampling of probe history, and the history as a chart reads it.

What is kept (`compact`, run hourly by the ticker's companion schedule and by `manage.py monitoring compact`):
- raw samples (ProbeSample) for RAW_RETENTION_DAYS (2 days: 2,880 per 1-minute probe);
- hourly rollups for HOURLY_RETENTION_DAYS (400 days: 9,600 per probe), daily rollups for ever (365 a year).
A rollup holds, per metric, min, sum, max and count (and up/known counts for availability), so an average
of any span is exact: sums and counts add up, hours into days, days into a year. A year of 1-minute samples
of 100 applications (52.6 million) is kept as 876,000 hourly and 36,500 daily rows.

`RollupState` holds the watermarks: everything before `hours_until` is in hourly rollups, everything
before `days_until` in daily ones. Raw samples and hourly rollups are deleted only once rolled up and past
their retention. `series()` reads each bucket from the coarsest data that holds it whole (daily rollups
before `days_until`, hourly ones before `hours_until`, raw samples after), so the current hour and day are
in the chart before they are compacted. Buckets are epoch seconds (UTC).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, ExpressionWrapper, F, FloatField, Max, Min, Q, Sum, Value
from django.db.models.functions import Cast, Mod, Trunc
from django.utils import timezone
from django.utils.functional import cached_property

from analytics.monitoring.choices import Metric, Resolution, SampleStatus
from analytics.monitoring.models import ProbeSample, RollupState, SampleRollup

HOUR, DAY = 3600, 86400
RAW_RETENTION_DAYS = 2
HOURLY_RETENTION_DAYS = 400
BUCKET_SECONDS = {Resolution.MINUTE: 60, Resolution.HOUR: HOUR, Resolution.DAY: DAY}
MEASURES = {"rpo": "rpo_seconds", "lag": "lag_bytes", "latency": "latency_ms"}  # rollup prefix -> sample field
METRIC_PREFIX = {Metric.RPO_SECONDS: "rpo", Metric.LAG_BYTES: "lag", Metric.LATENCY_MS: "latency"}
COUNTS = ("samples", "unknown_count", "up_count", "known_count")


def raw_retention() -> timedelta:
    return timedelta(days=getattr(settings, "MONITORING_RAW_RETENTION_DAYS", RAW_RETENTION_DAYS))


def hourly_retention() -> timedelta:
    return timedelta(days=getattr(settings, "MONITORING_HOURLY_RETENTION_DAYS", HOURLY_RETENTION_DAYS))


def epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def floor(seconds: int, size: int) -> int:
    return seconds - seconds % size


def at_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def state() -> RollupState:
    found, _ = RollupState.objects.get_or_create(pk=1)
    return found


# ----------------------------------------------------------------------------- aggregation
def _raw_aggregates() -> dict[str, Any]:
    fields: dict[str, Any] = {
        "samples": Count("id"),
        "unknown_count": Count("id", filter=Q(status=SampleStatus.UNKNOWN)),
        "up_count": Count("id", filter=Q(up=True)),
        "known_count": Count("up"),
    }
    for prefix, field in MEASURES.items():
        fields |= {
            f"{prefix}_count": Count(field),
            f"{prefix}_sum": Sum(field),
            f"{prefix}_min": Min(field),
            f"{prefix}_max": Max(field),
        }
    return fields


def _rollup_aggregates() -> dict[str, Any]:
    fields: dict[str, Any] = {name: Sum(name) for name in COUNTS}
    for prefix in MEASURES:
        fields |= {
            f"{prefix}_count": Sum(f"{prefix}_count"),
            f"{prefix}_sum": Sum(f"{prefix}_sum"),
            f"{prefix}_min": Min(f"{prefix}_min"),
            f"{prefix}_max": Max(f"{prefix}_max"),
        }
    return fields


def _raw_buckets(samples: Any, size: int, fields: dict[str, Any]) -> list[dict[str, Any]]:
    """Raw samples grouped by probe and bucket (minute, hour or day) in the database."""
    kind = {60: "minute", HOUR: "hour", DAY: "day"}[size]
    rows = (
        samples.annotate(t=Trunc("at", kind, tzinfo=UTC))
        .values("probe_id", "application_id", "t")
        .annotate(**fields)
        .order_by()
    )
    return [{"bucket": epoch(row.pop("t")), **row} for row in rows]


def _hour_buckets_as_days(rollups: Any, fields: dict[str, Any]) -> list[dict[str, Any]]:
    rows = (
        rollups.annotate(day=F("bucket") - Mod(F("bucket"), DAY))
        .values("probe_id", "application_id", "day")
        .annotate(**fields)
        .order_by()
    )
    return [{"bucket": int(row.pop("day")), **row} for row in rows]


def _rollup_row(row: dict[str, Any], resolution: str) -> SampleRollup:
    values = {name: row.get(name) for name in COUNTS}
    for prefix in MEASURES:
        for part in ("count", "sum", "min", "max"):
            values[f"{prefix}_{part}"] = row.get(f"{prefix}_{part}")
    for name in (*COUNTS, *(f"{p}_count" for p in MEASURES)):
        values[name] = int(values[name] or 0)
    return SampleRollup(
        probe_id=row["probe_id"],
        application_id=row["application_id"],
        resolution=resolution,
        bucket=row["bucket"],
        **values,
    )


# ----------------------------------------------------------------------------- compaction
def compact(now: datetime | None = None) -> dict[str, int]:
    """Roll finished hours of raw samples into hourly rollups and finished days of hours into daily ones,
    then drop what is rolled up and past its retention. Idempotent; safe to run concurrently (the state row
    is locked)."""
    now = now or timezone.now()
    done = {"hours": 0, "days": 0, "raw_deleted": 0, "hourly_deleted": 0}
    with transaction.atomic():
        state()
        st = RollupState.objects.select_for_update().get(pk=1)
        hour_end = at_epoch(floor(epoch(now), HOUR))
        hour_start = st.hours_until
        if hour_start is None:
            first = ProbeSample.objects.order_by("at").values_list("at", flat=True).first()
            hour_start = at_epoch(floor(epoch(first), HOUR)) if first else hour_end
        if hour_start < hour_end:
            rows = _raw_buckets(
                ProbeSample.objects.filter(at__gte=hour_start, at__lt=hour_end), HOUR, _raw_aggregates()
            )
            SampleRollup.objects.filter(
                resolution=Resolution.HOUR, bucket__gte=epoch(hour_start), bucket__lt=epoch(hour_end)
            ).delete()
            SampleRollup.objects.bulk_create([_rollup_row(row, Resolution.HOUR) for row in rows], batch_size=1000)
            done["hours"] = len(rows)
        st.hours_until = max(hour_end, st.hours_until or hour_end)

        day_end = at_epoch(floor(epoch(st.hours_until), DAY))
        day_start = st.days_until
        if day_start is None:
            first_bucket = (
                SampleRollup.objects.filter(resolution=Resolution.HOUR)
                .order_by("bucket")
                .values_list("bucket", flat=True)
                .first()
            )
            day_start = at_epoch(floor(first_bucket, DAY)) if first_bucket is not None else day_end
        if day_start < day_end:
            hours = SampleRollup.objects.filter(
                resolution=Resolution.HOUR, bucket__gte=epoch(day_start), bucket__lt=epoch(day_end)
            )
            rows = _hour_buckets_as_days(hours, _rollup_aggregates())
            SampleRollup.objects.filter(
                resolution=Resolution.DAY, bucket__gte=epoch(day_start), bucket__lt=epoch(day_end)
            ).delete()
            SampleRollup.objects.bulk_create([_rollup_row(row, Resolution.DAY) for row in rows], batch_size=1000)
            done["days"] = len(rows)
        st.days_until = max(day_end, st.days_until or day_end)
        st.save()

        raw_cut = min(now - raw_retention(), st.hours_until)
        done["raw_deleted"] = ProbeSample.objects.filter(at__lt=raw_cut).delete()[0]
        hourly_cut = min(epoch(now - hourly_retention()), epoch(st.days_until))
        done["hourly_deleted"] = SampleRollup.objects.filter(
            resolution=Resolution.HOUR, bucket__lt=hourly_cut
        ).delete()[0]
    return done


# ----------------------------------------------------------------------------- reading
def _merge(into: dict[tuple[int, int], dict[str, Any]], rows: Iterable[dict[str, Any]]) -> None:
    """Add rows (probe_id, bucket, counts, sums, mins, maxes) into `into`, combining equal buckets."""
    for row in rows:
        key = (row["probe_id"], row["bucket"])
        have = into.get(key)
        if have is None:
            into[key] = dict(row)
            continue
        for name, value in row.items():
            if value is None or name in ("probe_id", "application_id", "bucket"):
                continue
            if name.endswith("_min"):
                have[name] = value if have.get(name) is None else min(have[name], value)
            elif name.endswith("_max"):
                have[name] = value if have.get(name) is None else max(have[name], value)
            else:
                have[name] = (have.get(name) or 0) + value


def _fields_for(metric: str) -> list[str]:
    if metric == Metric.AVAILABILITY:
        return ["up_count", "known_count"]
    prefix = METRIC_PREFIX[metric]
    return [f"{prefix}_min", f"{prefix}_sum", f"{prefix}_max", f"{prefix}_count"]


def _point(metric: str, bucket: int, row: dict[str, Any]) -> tuple[Any, ...] | None:
    if metric == Metric.AVAILABILITY:
        known = int(row.get("known_count") or 0)
        if not known:
            return None
        up = int(row.get("up_count") or 0)
        return (bucket, 100.0 * up / known, up, known)
    prefix = METRIC_PREFIX[metric]
    count = int(row.get(f"{prefix}_count") or 0)
    if not count:
        return None
    total = float(row[f"{prefix}_sum"])
    return (bucket, row[f"{prefix}_min"], total / count, row[f"{prefix}_max"], count)


def columns(metric: str, resolution: str) -> list[str]:
    if resolution == Resolution.RAW:
        return ["t", "value"] if metric != Metric.AVAILABILITY else ["t", "up"]
    if metric == Metric.AVAILABILITY:
        return ["t", "percent", "up", "known"]
    return ["t", "min", "avg", "max", "count"]


def series(
    probe_ids: list[int], metric: str, resolution: str, start: datetime, end: datetime
) -> dict[int, list[tuple[Any, ...]]]:
    """probe id -> points in [start, end), oldest first; `columns(metric, resolution)` names a point's parts
    (tuples: a year of 100 series is 36,500 points, each built once, as the database returned it).
    Raw: one point per sample that measured the metric. Otherwise one per bucket that holds a measurement."""
    if not probe_ids:
        return {}
    out: dict[int, list[tuple[Any, ...]]] = {pk: [] for pk in probe_ids}
    if resolution == Resolution.RAW:
        field = "up" if metric == Metric.AVAILABILITY else MEASURES[METRIC_PREFIX[metric]]
        rows = (
            ProbeSample.objects.filter(probe_id__in=probe_ids, at__gte=start, at__lt=end)
            .exclude(**{f"{field}__isnull": True})
            .order_by("at", "id")
            .values_list("probe_id", "at", field)
        )
        for probe_id, at, value in rows:
            out[probe_id].append((epoch(at), value))
        return out

    size = BUCKET_SECONDS[resolution]
    lo, hi = floor(epoch(start), size), epoch(end)
    wanted = _fields_for(metric)
    raw_fields = {k: v for k, v in _raw_aggregates().items() if k in wanted}
    roll_fields = {k: v for k, v in _rollup_aggregates().items() if k in wanted}
    st = state()
    hours_until = epoch(st.hours_until) if st.hours_until else None
    days_until = epoch(st.days_until) if st.days_until else None
    buckets: dict[tuple[int, int], dict[str, Any]] = {}
    direct: list[Any] = []  # rollup rows whose bucket no other source shares: points computed in the database
    raw_from = lo
    if resolution == Resolution.DAY and days_until is not None:
        direct += _points_of_rollups(
            SampleRollup.objects.filter(
                probe_id__in=probe_ids, resolution=Resolution.DAY, bucket__gte=lo, bucket__lt=min(hi, days_until)
            ),
            metric,
        )
        raw_from = max(raw_from, days_until)
    if resolution in (Resolution.DAY, Resolution.HOUR) and hours_until is not None:
        hourly = SampleRollup.objects.filter(
            probe_id__in=probe_ids, resolution=Resolution.HOUR, bucket__gte=raw_from, bucket__lt=min(hi, hours_until)
        )
        if resolution == Resolution.DAY:  # the days since days_until: hours, and raw samples for the last one
            _merge(buckets, _hour_buckets_as_days(hourly, roll_fields))
        else:
            direct += _points_of_rollups(hourly, metric)
        raw_from = max(raw_from, hours_until)
    if raw_from < hi:
        raw = ProbeSample.objects.filter(probe_id__in=probe_ids, at__gte=at_epoch(raw_from), at__lt=end)
        if floor(raw_from, size) == floor(hi - 1, size):  # one bucket (the usual: the hour not yet compacted)
            rows = raw.values("probe_id", "application_id").annotate(**raw_fields).order_by()
            _merge(buckets, ({**row, "bucket": floor(raw_from, size)} for row in rows))
        else:
            _merge(buckets, _raw_buckets(raw, size, raw_fields))
    for row in direct:  # each probe's in bucket order, before its merged buckets (those start at a watermark)
        out[row[0]].append(row[1:])
    for (probe_id, bucket), row in sorted(buckets.items(), key=lambda item: item[0][1]):
        point = _point(metric, bucket, row)
        if point is not None:
            out[probe_id].append(point)
    return out


class _InDatabase(ExpressionWrapper):
    """A float computed by the database (REAL or double precision on both backends): no per-row conversion."""

    @cached_property
    def convert_value(self) -> Any:
        return self._convert_value_noop


def _points_of_rollups(rollups: Any, metric: str) -> Any:
    """(probe_id, *point) per rollup row that measured the metric, in bucket order; the average (or the
    availability percentage) computed by the database, so a year of 100 series is not 36,500 Python divisions."""
    if metric == Metric.AVAILABILITY:
        percent = _InDatabase(
            Value(100.0, output_field=FloatField()) * Cast("up_count", FloatField()) / F("known_count"),
            output_field=FloatField(),
        )
        return (
            rollups.filter(known_count__gt=0)
            .annotate(percent=percent)
            .order_by("probe_id", "bucket")  # the unique index's order: no sort
            .values_list("probe_id", "bucket", "percent", "up_count", "known_count")
        )
    prefix = METRIC_PREFIX[metric]
    average = _InDatabase(F(f"{prefix}_sum") / F(f"{prefix}_count"), output_field=FloatField())
    return (
        rollups.filter(**{f"{prefix}_count__gt": 0})
        .annotate(average=average)
        .order_by("probe_id", "bucket")
        .values_list("probe_id", "bucket", f"{prefix}_min", "average", f"{prefix}_max", f"{prefix}_count")
    )


def availability(probe_ids: list[int], since: datetime, now: datetime | None = None) -> float | None:
    """Percent of samples since `since` that found the service up (of those that could tell); None if none."""
    points = series(probe_ids, Metric.AVAILABILITY, Resolution.DAY, since, now or timezone.now())
    up = sum(p[2] for rows in points.values() for p in rows)
    known = sum(p[3] for rows in points.values() for p in rows)
    return round(100.0 * up / known, 4) if known else None
