"""States and enums of continuous monitoring (probes, samples, rollups, SLA violations)."""

from django.db import models


class SampleStatus(models.TextChoices):
    OK = "ok", "OK"  # the probe ran and its action answered: the measurements it could take are recorded
    UNKNOWN = "unknown", "Unknown"  # the probe timed out or failed: nothing measured, every value null


class Resolution(models.TextChoices):
    RAW = "raw", "Raw samples"  # every sample as recorded (kept MONITORING_RAW_RETENTION_DAYS)
    MINUTE = "minute", "1 minute"  # raw samples aggregated per minute (same retention as raw)
    HOUR = "hour", "1 hour"  # hourly rollups (kept MONITORING_HOURLY_RETENTION_DAYS)
    DAY = "day", "1 day"  # daily rollups (kept for ever)


ROLLUP_RESOLUTIONS = (Resolution.HOUR, Resolution.DAY)


class Metric(models.TextChoices):
    RPO_SECONDS = "rpo_seconds", "RPO (seconds)"  # data at risk: how far the copy is behind
    LAG_BYTES = "lag_bytes", "Replication lag (bytes)"
    AVAILABILITY = "availability", "Availability (%)"  # share of samples that found the service up
    LATENCY_MS = "latency_ms", "Probe latency (ms)"


class ViolationKind(models.TextChoices):
    RPO = "rpo", "RPO above target"  # probe samples above the RPO target for longer than the breach window
    RTO = "rto", "RTO above SLA threshold"  # an execution or DR test recovered slower than the SLA threshold
    TEST_CADENCE = "test_cadence", "Missed test cadence"  # a plan's test frequency demanded a test that did not happen


class HealthStatus(models.TextChoices):
    OK = "ok", "OK"  # every target met with margin
    AT_RISK = "at_risk", "At risk"  # a target is close (above AT_RISK_RATIO of it) or cannot be told
    BREACHED = "breached", "Breached"  # a target is exceeded now
