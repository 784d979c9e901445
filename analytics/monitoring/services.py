"""Monitoring use cases: a monitor's probes, running the due ones, recording what they measured (history,
the application's RTO target, RPO violations), and the lab's monitors."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from analytics.models import RTOTarget
from analytics.monitoring import probes, retention, violations
from analytics.monitoring.choices import SampleStatus
from analytics.monitoring.models import Monitor, Probe, ProbeSample
from analytics.notifications import services as notifications
from core import audit
from core.choices import AuditAction, AuthMethod
from core.exceptions import InvalidInput
from plans.models import Application, DRPlan

logger = logging.getLogger(__name__)

AVAILABILITY_WINDOW = timedelta(days=30)  # RTOTarget.current_availability_percent is measured over this
MAX_PARALLEL_PROBES = 8  # probes of one tick run at most this many at a time
REPLICATION_PREFIXES = ("postgres.", "redis.")  # probes whose samples say what the application's RPO is


def check_probes(specs: Any) -> None:
    """InvalidInput naming `probes[i].<field>` for the first probe that cannot run, or a repeated key."""
    if not isinstance(specs, list) or not specs:
        raise InvalidInput("a monitor needs at least one probe", field="probes")
    seen: set[str] = set()
    for i, spec in enumerate(specs):
        probes.validate_probe(spec.get("action"), spec.get("params", {}), field=f"probes[{i}]")
        if spec["key"] in seen:
            raise InvalidInput(f"probe key {spec['key']!r} is used twice", field=f"probes[{i}].key")
        seen.add(spec["key"])


def replace_probes(monitor: Monitor, specs: Iterable[Mapping[str, Any]]) -> None:
    """Replace-all: probes with a key already there are updated (their history stays), new keys created,
    missing keys deleted with their history. An updated probe runs at once."""
    wanted = {spec["key"]: spec for spec in specs}
    with transaction.atomic():
        monitor.probes.exclude(key__in=list(wanted)).delete()
        existing = {probe.key: probe for probe in monitor.probes.all()}
        for key, spec in wanted.items():
            values = {
                "action": spec["action"],
                "params": dict(spec.get("params") or {}),
                "interval_seconds": spec["interval_seconds"],
                "timeout_seconds": spec.get("timeout_seconds") or 10,
                "next_run_at": None,  # due now
            }
            if key in existing:
                Probe.objects.filter(pk=existing[key].pk).update(**values)
            else:
                Probe.objects.create(monitor=monitor, key=key, **values)


# ----------------------------------------------------------------------------- running
def due_probes(now: datetime) -> list[Probe]:
    return list(
        Probe.objects.filter(monitor__enabled=True)
        .filter(Q(next_run_at__lte=now) | Q(next_run_at__isnull=True))
        .select_related("monitor")
        .order_by("next_run_at", "pk")
    )


def claim(probe: Probe, now: datetime) -> bool:
    """Move the probe's next run one interval on, if nobody else did (a conditional update)."""
    nxt = now + timedelta(seconds=probe.interval_seconds)
    return bool(Probe.objects.filter(pk=probe.pk, next_run_at=probe.next_run_at).update(next_run_at=nxt))


def run_due(now: datetime | None = None) -> list[ProbeSample]:
    """Run every due probe of an enabled monitor once (MAX_PARALLEL_PROBES at a time) and record them."""
    now = now or timezone.now()
    claimed = [probe for probe in due_probes(now) if claim(probe, now)]
    if not claimed:
        return []
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_PROBES, len(claimed))) as pool:
        measured = list(pool.map(measure, claimed))
    return [record(probe, measurement) for probe, measurement in zip(claimed, measured, strict=True)]


def measure(probe: Probe) -> probes.Measurement:
    return probes.run(
        probe.action, probe.params or {}, timeout=probe.timeout_seconds, step_key=f"{probe.monitor.slug}.{probe.key}"
    )


def run_probe(probe: Probe) -> ProbeSample:
    """Run one probe now, whatever its schedule, and record it."""
    return record(probe, measure(probe))


def record(probe: Probe, measurement: probes.Measurement) -> ProbeSample:
    """Store a measurement as a sample; bring the application's RTO target and RPO violations up to date."""
    application_id = probe.monitor.application_id
    with transaction.atomic():
        sample = ProbeSample.objects.create(
            probe=probe,
            application_id=application_id,
            at=measurement.at,
            status=SampleStatus.OK if measurement.ok else SampleStatus.UNKNOWN,
            up=measurement.up,
            rpo_seconds=measurement.rpo_seconds if measurement.ok else None,
            lag_bytes=measurement.lag_bytes if measurement.ok else None,
            latency_ms=measurement.latency_ms if measurement.ok else None,
            error=measurement.error[:500],
        )
        Probe.objects.filter(pk=probe.pk).update(last_run_at=measurement.at)
        target = RTOTarget.objects.filter(application_id=application_id).first()
        if target is not None:
            update_target(target, measurement.at)
            if probe.action.startswith(REPLICATION_PREFIXES):
                violations.on_rpo_sample(target, sample, target.current_rpo_seconds)
    if target is not None:
        _evaluate_alerts(application_id)
    return sample


def _evaluate_alerts(application_id: int) -> None:
    """The alert rules on this application's current values, at once rather than at the next minute's sweep.
    A failure here is logged: an alert must never stop a probe (the sweep evaluates again)."""
    try:
        notifications.evaluate_alert_rules([application_id])
    except Exception:
        logger.exception("alert rules for application %s could not be evaluated after its probe", application_id)


def current_rpo(application_id: int) -> tuple[float | None, datetime | None]:
    """(RPO seconds, when) from the latest sample of each replication probe of the application: the worst
    of those that measured it; (None, when) if the latest ones measured nothing."""
    latest = []
    for probe_id in (
        Probe.objects.filter(monitor__application_id=application_id, monitor__enabled=True)
        .filter(Q(action__startswith="postgres.") | Q(action__startswith="redis."))
        .values_list("pk", flat=True)
    ):
        row = (
            ProbeSample.objects.filter(probe_id=probe_id)
            .order_by("-at", "-id")
            .values_list("rpo_seconds", "at")
            .first()
        )
        if row is not None:
            latest.append(row)
    if not latest:
        return None, None
    known = [rpo for rpo, _ in latest if rpo is not None]
    when = max(at for _, at in latest)
    return (max(known) if known else None), when


def update_target(target: RTOTarget, now: datetime) -> None:
    """current_rpo_seconds from the latest replication samples (null when they measured nothing: never a
    stale value), current_availability_percent over AVAILABILITY_WINDOW. Measured, not a person's change:
    not audited, updated_at untouched. The RTO trend stays record_outcome's (it is measured by executions)."""
    fields: dict[str, Any] = {}
    has_replication = Probe.objects.filter(
        Q(action__startswith="postgres.") | Q(action__startswith="redis."),
        monitor__application_id=target.application_id,
        monitor__enabled=True,
    ).exists()
    if has_replication:
        fields["current_rpo_seconds"] = current_rpo(target.application_id)[0]
    probe_ids = list(Probe.objects.filter(monitor__application_id=target.application_id).values_list("pk", flat=True))
    percent = retention.availability(probe_ids, now - AVAILABILITY_WINDOW, now + timedelta(seconds=1))
    if percent is not None:
        fields["current_availability_percent"] = Decimal(str(percent)).quantize(Decimal("0.0001"))
    if fields:
        RTOTarget.objects.filter(pk=target.pk).update(**fields)
        for name, value in fields.items():
            setattr(target, name, value)


# ----------------------------------------------------------------------------- the lab's monitors
def ensure_monitors(specs: Iterable[Mapping[str, Any]], *, comment: str = "") -> list[str]:
    """Create or update monitors described as data: {slug, application, plan, description, probes: [{key,
    action, params, interval_seconds, timeout_seconds}]}. Applications or plans missing in the database are
    skipped, saying so. Audited as the system's change. Idempotent."""
    lines = []
    for spec in specs:
        application = Application.objects.filter(slug=spec["application"]).first()
        if application is None:
            lines.append(f"monitor {spec['slug']}: no application {spec['application']!r}; skipped")
            continue
        plan = DRPlan.objects.filter(plan_id=spec["plan"]).first() if spec.get("plan") else None
        check_probes(spec["probes"])
        with transaction.atomic():
            monitor = Monitor.objects.filter(slug=spec["slug"]).first()
            before = audit.snapshot(monitor) if monitor else None
            if monitor is None:
                monitor = Monitor.objects.create(
                    slug=spec["slug"],
                    application=application,
                    plan=plan,
                    description=spec.get("description", ""),
                    enabled=spec.get("enabled", True),
                )
            else:
                Monitor.objects.filter(pk=monitor.pk).update(
                    application=application, plan=plan, description=spec.get("description", monitor.description)
                )
                monitor.refresh_from_db()
            replace_probes(monitor, spec["probes"])
            audit.record(
                AuditAction.UPDATE if before else AuditAction.CREATE,
                monitor,
                auth_method=AuthMethod.SYSTEM,
                before=before,
                after=audit.snapshot(monitor),
                comment=comment,
            )
        probes_text = ", ".join(f"{p['key']} ({p['action']} every {p['interval_seconds']} s)" for p in spec["probes"])
        lines.append(f"monitor {monitor.slug} on {application.slug}: {probes_text}")
    return lines


def ensure_lab_monitors(specs: list[dict[str, Any]]) -> list[str]:
    """The lab's after-up hook (lab/hooks.py, installed by drplan/wiring.py): its monitors, and the ticker."""
    from analytics.monitoring import tasks

    lines = ensure_monitors(specs, comment="DR lab monitors (manage.py lab up)")
    tasks.ensure_schedules()
    return lines
