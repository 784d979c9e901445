"""Probes against real servers: a PostgreSQL primary/standby pair (pgserver), a hung port, an HTTP server.

The probe runs through the engine's action runner and writes history; RPO rises while the standby's replay
is paused or its replication stopped and falls back once it resumes; a probe that times out records
"unknown" and nothing else."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from analytics.models import RTOTarget
from analytics.monitoring import services
from analytics.monitoring.models import Probe, ProbeSample, SLAViolation
from analytics.tests.factories import make_target
from core.localservers import postgres as pg
from core.secrets import create_secret
from failover.tests.pg_pair import black_hole, wait_until
from plans.models import Application

pytestmark = pytest.mark.django_db(transaction=True)  # probes read secrets on their own thread


def _monitor(slug: str, action: str, params: dict, *, timeout: int = 10, app: str = "orders-db") -> Probe:
    application, _ = Application.objects.get_or_create(slug=app, defaults={"name": app})
    services.ensure_monitors(
        [
            {
                "slug": slug,
                "application": application.slug,
                "probes": [
                    {
                        "key": "p",
                        "action": action,
                        "params": params,
                        "interval_seconds": 60,
                        "timeout_seconds": timeout,
                    }
                ],
            }
        ]
    )
    return Probe.objects.get(monitor__slug=slug)


def _rising(probe: Probe, above: float, after: ProbeSample | None = None, gap: float = 0.0) -> ProbeSample:
    """Probe until the measured RPO is above `above` (and, with `after`, at least `gap` s after that sample)."""

    def check() -> ProbeSample | None:
        s = services.run_probe(probe)
        late = after is None or (s.at - after.at).total_seconds() >= gap
        return s if s.rpo_seconds is not None and s.rpo_seconds > above and late else None

    return wait_until(check, timeout=30, what=f"RPO above {above}")


@pytest.mark.pgpair
def test_rpo_rises_while_replay_is_paused_and_falls_back_when_it_resumes(pg_pair):
    primary, standby = pg_pair.reset()
    create_secret("orders-standby", standby.dsn)
    application = Application.objects.create(slug="orders-db", name="Orders database")
    make_target(application, rpo_target_seconds=1, rpo_breach_window_seconds=1, penalty_per_breach=Decimal("5000"))
    probe = _monitor("orders-db-replication", "postgres.replication_status", {"dsn_secret": "orders-standby"})
    pg_pair.write(primary)
    pg_pair.caught_up(primary, standby)

    caught_up = services.run_probe(probe)
    assert (caught_up.status, caught_up.up, caught_up.rpo_seconds, caught_up.lag_bytes) == ("ok", True, 0.0, 0)
    assert caught_up.latency_ms is not None and caught_up.latency_ms > 0

    standby.query("SELECT pg_wal_replay_pause()")
    try:
        wait_until(lambda: standby.value("SELECT pg_get_wal_replay_pause_state()") == "paused", what="replay paused")
        pg_pair.write(primary, 5)
        received = primary.lsn("SELECT pg_current_wal_lsn()")
        wait_until(lambda: standby.lsn("SELECT pg_last_wal_receive_lsn()") >= received, what="WAL received")
        first = _rising(probe, 1.0)  # above the target
        assert first.status == "ok" and first.lag_bytes > 0
        assert not SLAViolation.objects.exists()  # not for longer than the window yet
        later = _rising(probe, first.rpo_seconds, after=first, gap=1.0)
        assert later.rpo_seconds > first.rpo_seconds and later.lag_bytes >= first.lag_bytes
        target = RTOTarget.objects.get(application=application)
        assert target.current_rpo_seconds == later.rpo_seconds
        # above the 1 s target for at least the 1 s window: one open breach, priced
        violation = SLAViolation.objects.get(kind="rpo", application=application)
        assert violation.ended_at is None and violation.penalty == Decimal("5000.00")
        assert violation.started_at == first.at and violation.worst_value == later.rpo_seconds
        assert target.breach_count == 1
    finally:
        standby.query("SELECT pg_wal_replay_resume()")
    pg_pair.caught_up(primary, standby)
    back = services.run_probe(probe)
    assert (back.status, back.rpo_seconds, back.lag_bytes) == ("ok", 0.0, 0)
    assert RTOTarget.objects.get(application=application).current_rpo_seconds == 0.0
    violation.refresh_from_db()
    assert violation.ended_at == back.at
    assert ProbeSample.objects.filter(probe=probe).count() >= 4  # every result is history


@pytest.mark.pgpair
def test_rpo_rises_while_replication_is_stopped_and_falls_back_when_it_resumes(pg_pair):
    primary, standby = pg_pair.reset()
    create_secret("pg-standby", standby.dsn)
    create_secret("pg-primary", primary.dsn)
    on_standby = _monitor("standby-replication", "postgres.replication_status", {"dsn_secret": "pg-standby"})
    on_primary = _monitor("primary-replication", "postgres.replication_status", {"dsn_secret": "pg-primary"})
    conninfo = standby.value("SHOW primary_conninfo")
    pg_pair.write(primary)
    pg_pair.caught_up(primary, standby)
    assert services.run_probe(on_standby).rpo_seconds == 0.0
    assert services.run_probe(on_primary).rpo_seconds == 0.0

    pg.set_conf(standby.port, "primary_conninfo", "")  # the standby stops receiving WAL
    try:
        wait_until(lambda: not standby.query("SELECT 1 FROM pg_stat_wal_receiver"), what="WAL receiver stopped")
        pg_pair.write(primary, 3)
        first = _rising(on_standby, 0.0)
        later = _rising(on_standby, first.rpo_seconds)
        assert later.rpo_seconds > first.rpo_seconds
        # the primary has no standby to measure: the RPO is unknown there, not 0
        wait_until(lambda: not primary.query("SELECT 1 FROM pg_stat_replication"), what="walsender gone")
        seen = services.run_probe(on_primary)
        assert (seen.status, seen.up, seen.rpo_seconds, seen.lag_bytes) == ("ok", True, None, None)
    finally:
        pg.set_conf(standby.port, "primary_conninfo", conninfo)
    wait_until(lambda: pg_pair.streaming(primary, standby), 30, "streaming again")
    pg_pair.caught_up(primary, standby)
    assert services.run_probe(on_standby).rpo_seconds == 0.0
    assert wait_until(lambda: services.run_probe(on_primary).rpo_seconds == 0.0, what="primary sees its standby")


def test_a_probe_that_times_out_records_unknown_and_no_value():
    application = Application.objects.create(slug="orders-db", name="Orders database")
    make_target(application, current_rpo_seconds=12.0)
    with black_hole() as port:
        create_secret("hung", f"postgresql://postgres@127.0.0.1:{port}/postgres")
        probe = _monitor("hung-replication", "postgres.replication_status", {"dsn_secret": "hung"}, timeout=1)
        sample = services.run_probe(probe)
    assert (sample.status, sample.up, sample.rpo_seconds, sample.lag_bytes, sample.latency_ms) == (
        "unknown",
        None,
        None,
        None,
        None,
    )
    assert "timed out" in sample.error or "no answer" in sample.error
    # the application's current RPO is unknown now, not the last value seen
    assert RTOTarget.objects.get(application=application).current_rpo_seconds is None


class _Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(type(self).status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_server() -> Iterator[tuple[str, type[_Health]]]:
    handler = type("Handler", (_Health,), {"status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/healthz", handler
    finally:
        server.shutdown()
        server.server_close()


def test_an_http_probe_records_up_latency_and_down(health_server):
    url, handler = health_server
    application = Application.objects.create(slug="web-frontend", name="Web")
    make_target(application, availability_target_percent=Decimal("99.9"))
    probe = _monitor("web-health", "http", {"url": url, "expected_status": 200}, app="web-frontend")
    up = services.run_probe(probe)
    assert (up.status, up.up, up.rpo_seconds) == ("ok", True, None)
    assert up.latency_ms > 0
    handler.status = 503
    down = services.run_probe(probe)
    assert (down.status, down.up, down.latency_ms) == ("unknown", False, None)
    assert "503" in down.error
    # availability over the window: one sample of two found it up
    assert RTOTarget.objects.get(application=application).current_availability_percent == Decimal("50.0000")
