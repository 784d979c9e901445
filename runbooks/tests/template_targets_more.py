"""The real servers each template of the library's second half is run against (runbooks/tests/
test_template_runs_more.py): HAProxy in front of two HTTP sites, a MariaDB primary and replica, and moto's
AWS emulator. A factory starts them in a temporary folder, yields the run's parameters and secrets and a
`verify()` that asserts, on those servers, the state after the failover; it stops them by pid on exit."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from failover.tests.aws_support import MotoServer, credentials, make_replica
from failover.tests.engine_support import wait_for
from failover.tests.haproxy_support import BACKEND, HOST, Client, running_haproxy
from failover.tests.mariadb_support import running_pair

try:  # the shared shape (runbooks/tests/template_targets.py) once the library's first half is there
    from runbooks.tests.template_targets import TemplateTarget
except ImportError:  # pragma: no cover - until then, the same dataclass

    @dataclass
    class TemplateTarget:  # type: ignore[no-redef]
        params: dict[str, Any]
        secrets: dict[str, str]
        verify: Callable[[], None]


TargetFactory = Callable[[Path], AbstractContextManager[TemplateTarget]]


@contextlib.contextmanager
def active_active_haproxy(root: Path) -> Iterator[TemplateTarget]:
    """HAProxy (runtime API over TCP) with site-a at weight 100 and site-b at 0, both up; a client sends
    requests through it from before the run until verify(), which asserts none failed, both sites served
    during the run, and every request after it reaches site B."""
    with running_haproxy(root) as proxy:
        client = Client(proxy).start()

        def verify() -> None:
            before = client.total
            wait_for(lambda: client.total >= before + 20, timeout=60)
            client.stop()
            assert client.failures == 0, client.reasons
            assert client.sites["site-a"] > 0 and client.sites["site-b"] > 0, dict(client.sites)
            assert client.last[-20:] == ["site-b"] * 20
            assert proxy.weights() == {"site-a": 0, "site-b": 100}
            assert proxy.status("site-a") == "DRAIN"

        try:
            yield TemplateTarget(
                params={
                    "backend": BACKEND,
                    "site_a": "site-a",
                    "site_b": "site-b",
                    "public_url": f"http://{HOST}:{proxy.port}/health",
                    "soak_seconds": 1,
                },
                secrets={"lb_runtime_api": proxy.api_address},
                verify=verify,
            )
        finally:
            client.stop()


@contextlib.contextmanager
def mariadb_replication_failover(root: Path) -> Iterator[TemplateTarget]:
    """A MariaDB primary and its GTID replica (caught up, read_only); the application wrote an order. verify():
    the replica is a writable primary with every order, no longer replicating; the old primary is read_only
    and refuses the application's writes."""
    import pymysql

    with running_pair() as pair:
        pair.primary.query("INSERT INTO shop.orders (item) VALUES ('paid before the failover')", user="app")
        orders = pair.primary.query("SELECT id, item FROM shop.orders ORDER BY id")

        def verify() -> None:
            assert pair.replica.query("SHOW SLAVE STATUS") == []
            assert pair.replica.value("SELECT @@read_only") == 0
            assert pair.replica.query("SELECT id, item FROM shop.orders ORDER BY id") == orders
            pair.replica.query("INSERT INTO shop.orders (item) VALUES ('paid after the failover')", user="app")
            assert pair.replica.value("SELECT count(*) FROM shop.drplan_heartbeat", user="app") == 1
            assert pair.primary.value("SELECT @@read_only") == 1
            try:
                pair.primary.query("INSERT INTO shop.orders (item) VALUES ('split brain')", user="app")
            except pymysql.err.OperationalError as exc:
                assert exc.args[0] == 1290, exc  # ER_OPTION_PREVENTS_STATEMENT: --read-only
            else:
                raise AssertionError("the fenced old primary took a write")

        yield TemplateTarget(
            params={"max_lag_seconds": 5, "heartbeat_table": "shop.drplan_heartbeat"},
            secrets={
                "mariadb_primary": pair.primary.dsn(),
                "mariadb_replica": pair.replica.dsn(),
                "mariadb_replica_app": pair.replica.dsn("app"),
            },
            verify=verify,
        )


# --- AWS on moto's standalone server ------------------------------------------------------------------------


@contextlib.contextmanager
def _moto(root: Path) -> Iterator[MotoServer]:
    server = MotoServer(root / "moto.log")
    try:
        yield server
    finally:
        server.stop()


def _zone(moto: MotoServer, records: list[tuple[str, str, str]]) -> str:
    """A hosted zone example.com with the given (name, type, value) records (TTL 300); its id."""
    route53 = moto.client("route53")
    zone = route53.create_hosted_zone(Name="example.com", CallerReference=uuid.uuid4().hex)["HostedZone"]["Id"]
    changes = [
        {
            "Action": "CREATE",
            "ResourceRecordSet": {"Name": name, "Type": kind, "TTL": 300, "ResourceRecords": [{"Value": value}]},
        }
        for name, kind, value in records
    ]
    if changes:
        route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
    return zone.removeprefix("/hostedzone/")


def _record(moto: MotoServer, zone: str, name: str, kind: str) -> dict[str, Any]:
    found = moto.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return next(r for r in found if (r["Name"], r["Type"]) == (name, kind))


def _db(moto: MotoServer, identifier: str) -> dict[str, Any]:
    return moto.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


class _Healthy(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()


@contextlib.contextmanager
def aws_route53_failover(root: Path) -> Iterator[TemplateTarget]:
    """www.example.com. A 192.0.2.10 in a zone on moto; the DR site's health URL is a real HTTP server."""
    site = ThreadingHTTPServer((HOST, 0), _Healthy)
    threading.Thread(target=site.serve_forever, daemon=True).start()
    try:
        with _moto(root) as moto:
            zone = _zone(moto, [("www.example.com.", "A", "192.0.2.10")])

            def verify() -> None:
                record = _record(moto, zone, "www.example.com.", "A")
                assert record["ResourceRecords"] == [{"Value": "198.51.100.20"}]
                assert record["TTL"] == 60

            yield TemplateTarget(
                params={
                    "hosted_zone_id": zone,
                    "record_name": "www.example.com.",
                    "dr_address": "198.51.100.20",
                    "primary_address": "192.0.2.10",
                    "ttl": 60,
                    "dr_health_url": f"http://{HOST}:{site.server_address[1]}/health",
                },
                secrets={"aws_dr": credentials(moto.url)},
                verify=verify,
            )
    finally:
        site.shutdown()
        site.server_close()


@contextlib.contextmanager
def aws_rds_replica_promotion(root: Path) -> Iterator[TemplateTarget]:
    """orders and its read replica orders-dr on moto; orders-db.example.com. CNAME the primary's endpoint."""
    with _moto(root) as moto:
        make_replica(moto)
        primary = _db(moto, "orders")["Endpoint"]["Address"]
        zone = _zone(moto, [("orders-db.example.com.", "CNAME", primary)])
        replica_endpoint = _db(moto, "orders-dr")["Endpoint"]["Address"]
        assert replica_endpoint != primary

        def verify() -> None:
            record = _record(moto, zone, "orders-db.example.com.", "CNAME")
            assert record["ResourceRecords"] == [{"Value": replica_endpoint}]
            promoted = _db(moto, "orders-dr")
            assert (promoted["DBInstanceStatus"], promoted["BackupRetentionPeriod"]) == ("available", 7)

        yield TemplateTarget(
            params={
                "replica_id": "orders-dr",
                "backup_retention_days": 7,
                "hosted_zone_id": zone,
                "db_record_name": "orders-db.example.com.",
                "ttl": 30,
            },
            secrets={"aws_dr": credentials(moto.url)},
            verify=verify,
        )


@contextlib.contextmanager
def aws_ec2_pilot_light(root: Path) -> Iterator[TemplateTarget]:
    """Two stopped instances, orders and its read replica orders-dr, app.example.com. A 192.0.2.10 on moto."""
    with _moto(root) as moto:
        ec2 = moto.client("ec2")
        image = ec2.describe_images()["Images"][0]["ImageId"]
        answer = ec2.run_instances(ImageId=image, MinCount=2, MaxCount=2, InstanceType="t3.micro")
        ids = [i["InstanceId"] for i in answer["Instances"]]
        ec2.stop_instances(InstanceIds=ids)
        make_replica(moto)
        zone = _zone(moto, [("app.example.com.", "A", "192.0.2.10")])

        def instances() -> dict[str, dict[str, Any]]:
            found = ec2.describe_instances(InstanceIds=ids)["Reservations"]
            return {i["InstanceId"]: i for r in found for i in r["Instances"]}

        assert {i["State"]["Name"] for i in instances().values()} == {"stopped"}

        def verify() -> None:
            now = instances()
            assert {i["State"]["Name"] for i in now.values()} == {"running"}
            record = _record(moto, zone, "app.example.com.", "A")
            addresses = sorted(now[i]["PrivateIpAddress"] for i in ids)
            assert sorted(r["Value"] for r in record["ResourceRecords"]) == addresses
            promoted = _db(moto, "orders-dr")
            assert (promoted["DBInstanceStatus"], promoted["BackupRetentionPeriod"]) == ("available", 7)

        yield TemplateTarget(
            params={
                "instance_ids": ",".join(ids),
                "db_replica_id": "orders-dr",
                "hosted_zone_id": zone,
                "record_name": "app.example.com.",
                "ttl": 60,
            },
            secrets={"aws_dr": credentials(moto.url)},
            verify=verify,
        )


TARGETS_MORE: dict[str, TargetFactory] = {
    "active-active-haproxy": active_active_haproxy,
    "mariadb-replication-failover": mariadb_replication_failover,
    "aws-route53-failover": aws_route53_failover,
    "aws-rds-replica-promotion": aws_rds_replica_promotion,
    "aws-ec2-pilot-light": aws_ec2_pilot_light,
}
