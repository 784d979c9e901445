"""Retention and rollups keep the aggregates exact: the history answers the same before and after
compaction, from raw samples, hourly and daily rollups, until each is past its retention."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from analytics.monitoring import retention, services
from analytics.monitoring.models import Probe, ProbeSample, RollupState, SampleRollup
from analytics.monitoring.probes import Measurement
from plans.models import Application

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 1, 5, 22, 0, tzinfo=UTC)  # three hours: two on the 5th, one on the 6th
MINUTES = 180


@pytest.fixture
def probe() -> Probe:
    Application.objects.create(slug="orders-db", name="Orders database")
    services.ensure_monitors(
        [
            {
                "slug": "orders-db-replication",
                "application": "orders-db",
                "probes": [
                    {
                        "key": "standby",
                        "action": "postgres.replication_status",
                        "params": {"dsn_secret": "orders-standby"},
                        "interval_seconds": 60,
                    }
                ],
            }
        ]
    )
    return Probe.objects.select_related("monitor").get()


def _record(probe: Probe) -> list[ProbeSample]:
    """A sample a minute; every 10th unknown (timed out), every 7th down; the others measured."""
    samples = []
    for i in range(MINUTES):
        at = T0 + timedelta(minutes=i, seconds=7)
        if i % 10 == 9:
            measurement = Measurement(at, False, None, error="timed out")
        elif i % 7 == 6:
            measurement = Measurement(at, False, False, error="connection refused")
        else:
            measurement = Measurement(at, True, True, float(i % 17), (i % 17) * 100, 5.0 + i % 3)
        samples.append(services.record(probe, measurement))
    return samples


def _expected(samples: list[ProbeSample], size: int) -> dict[str, list[list]]:
    buckets: dict[int, list[ProbeSample]] = {}
    for s in samples:
        buckets.setdefault(retention.floor(retention.epoch(s.at), size), []).append(s)
    out: dict[str, list[list]] = {"rpo_seconds": [], "lag_bytes": [], "latency_ms": [], "availability": []}
    for bucket, rows in sorted(buckets.items()):
        for metric in ("rpo_seconds", "lag_bytes", "latency_ms"):
            values = [getattr(s, metric) for s in rows if getattr(s, metric) is not None]
            out[metric].append([bucket, min(values), sum(values) / len(values), max(values), len(values)])
        known = [s.up for s in rows if s.up is not None]
        up = sum(known)
        out["availability"].append([bucket, 100.0 * up / len(known), up, len(known)])
    return out


def _answers(probe: Probe, resolution: str) -> dict[str, list[list]]:
    return {
        metric: [
            list(point)
            for point in retention.series(
                [probe.pk], metric, resolution, T0 - timedelta(days=1), T0 + timedelta(days=2)
            )[probe.pk]
        ]
        for metric in ("rpo_seconds", "lag_bytes", "latency_ms", "availability")
    }


def test_rollups_answer_exactly_what_the_raw_samples_did_through_every_stage_of_retention(probe):
    samples = _record(probe)
    hourly, daily = _expected(samples, retention.HOUR), _expected(samples, retention.DAY)
    assert [len(v) for v in hourly.values()] == [3, 3, 3, 3] and [len(v) for v in daily.values()] == [2, 2, 2, 2]
    assert _answers(probe, "hour") == hourly and _answers(probe, "day") == daily  # from raw samples

    # an hour after the last sample: the three hours are rolled up; raw samples are still within retention
    done = retention.compact(now=T0 + timedelta(hours=4))
    assert (done["hours"], done["days"], done["raw_deleted"]) == (3, 1, 0)  # the 5th is over: a daily rollup
    assert SampleRollup.objects.filter(resolution="hour").count() == 3
    assert _answers(probe, "hour") == hourly and _answers(probe, "day") == daily
    assert retention.compact(now=T0 + timedelta(hours=4))["hours"] == 0  # idempotent
    first = SampleRollup.objects.get(resolution="hour", bucket=retention.epoch(T0))
    assert (first.samples, first.unknown_count, first.known_count) == (60, 6 + 8, 54)

    # three days on: days rolled up, raw samples past their 2 days dropped; hourly still kept
    done = retention.compact(now=T0 + timedelta(days=3))
    assert done["days"] == 1 and done["raw_deleted"] == MINUTES and ProbeSample.objects.count() == 0
    assert SampleRollup.objects.filter(resolution="day").count() == 2
    assert _answers(probe, "hour") == hourly and _answers(probe, "day") == daily
    assert retention.series([probe.pk], "rpo_seconds", "raw", T0, T0 + timedelta(days=1))[probe.pk] == []

    # past the hourly retention: only the daily rollups answer, still exactly
    done = retention.compact(now=T0 + timedelta(days=retention.HOURLY_RETENTION_DAYS + 2))
    assert done["hourly_deleted"] == 3
    assert _answers(probe, "day") == daily
    assert _answers(probe, "hour") == {m: [] for m in daily}


def test_a_bucket_half_rolled_up_and_half_raw_adds_up(probe):
    samples = _record(probe)
    retention.compact(now=T0 + timedelta(hours=1, minutes=30))  # 22:00 rolled up; 23:00 onwards still raw
    assert RollupState.objects.get().hours_until == T0 + timedelta(hours=1)
    assert _answers(probe, "day") == _expected(samples, retention.DAY)  # the 5th: one hourly rollup + raw
    assert _answers(probe, "hour") == _expected(samples, retention.HOUR)
    # up to midnight: the raw part is one bucket (23:00, and the 5th), aggregated without truncating times
    midnight = T0 + timedelta(hours=2)
    on_the_5th = [s for s in samples if s.at < midnight]
    for resolution, size in (("hour", retention.HOUR), ("day", retention.DAY)):
        for metric, points in _expected(on_the_5th, size).items():
            answer = retention.series([probe.pk], metric, resolution, T0, midnight)[probe.pk]
            assert [list(point) for point in answer] == points


def test_raw_samples_are_dropped_only_once_rolled_up(probe, settings):
    settings.MONITORING_RAW_RETENTION_DAYS = 0
    samples = _record(probe)
    retention.compact(now=T0 + timedelta(hours=2, minutes=30))  # the third hour is not finished
    kept = ProbeSample.objects.order_by("at")
    assert kept.count() == 60 and kept.first().at >= T0 + timedelta(hours=2)
    assert RollupState.objects.get().hours_until == T0 + timedelta(hours=2)
    assert _answers(probe, "hour") == _expected(samples, retention.HOUR)


def test_availability_is_up_of_known_samples(probe):
    samples = _record(probe)
    known = [s.up for s in samples if s.up is not None]
    expected = round(100.0 * sum(known) / len(known), 4)
    assert retention.availability([probe.pk], T0, T0 + timedelta(hours=3)) == expected
    retention.compact(now=T0 + timedelta(days=3))
    assert retention.availability([probe.pk], T0, T0 + timedelta(hours=3)) == expected
