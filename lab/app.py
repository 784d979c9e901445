"""The lab's "business application": a steady stream of numbered orders, one transaction each.

    python -m lab.app --dir var/lab [--interval 0.02] [--http-port N]

It writes into whichever PostgreSQL var/lab/route.json names (re-read on every connection
failure, and whenever the file changes), and appends every ACKNOWLEDGED order — committed,
as far as the application can tell — to acked.log ("<id> <epoch> <unix time>", fsync'd), so
downtime and lost transactions are observable from outside the database. Order ids come from
the application; a failed insert is retried with the same id (ON CONFLICT DO NOTHING).

When the route's postgres epoch changes (a failover/switchover repointed it), the app checks
which orders it acknowledged before the switch are missing on the new primary: its own count
of lost transactions. It also notes the outage it saw (last ack before → first ack after).
Both go to app-status.json, rewritten about twice a second. Best effort, it also writes the
last order id to the Redis the route names (so Redis replication carries traffic too).

Its admin HTTP API on 127.0.0.1 (--http-port; lab/httpapi.py) is what runbooks drive with the `http`
action, as they would a load balancer or DNS API: `POST /admin/route` (Bearer token) repoints it at a
new PostgreSQL DSN or Redis URL, `GET /status` reports what it saw, waiting for the state asked for.

No Django here: this module must start fast and stay small.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from lab.state import DBNAME, DBUSER, acked_path, app_status_path, read_acked, read_route, write_json_atomic


class OrdersApp:
    def __init__(self, root: Path, interval: float) -> None:
        self.root = root
        self.interval = interval
        self.conn: Any = None
        self.target: tuple[str, int] | None = None
        self.epoch = 0
        self.route_mtime = 0.0
        acked = read_acked(root)
        self.next_id = (max((a[0] for a in acked), default=0)) + 1
        self.acked_total = len(acked)
        self.unverified: list[int] = [a[0] for a in acked[-100000:]]  # acked, not yet checked on a new primary
        self.epoch_of_unverified = acked[-1][1] if acked else 0
        self.last_ack_at: float | None = acked[-1][2] if acked else None
        self.errors = 0
        self.last_error = ""
        self.lost: dict[str, list[int]] = {}
        self.outages: list[dict[str, Any]] = []
        self.pending_outage: dict[str, Any] | None = None
        self.redis: Any = None
        self.redis_target: tuple[str, int] | None = None
        self.redis_retry_at = 0.0
        self.stopping = False
        self.log = open(acked_path(root), "a")  # noqa: SIM115 (held open for the app's life)
        self.changed = threading.Condition()  # notified after every ack and every route change seen
        self.switch: dict[str, Any] | None = None  # the last route change: what it found and what followed
        self.acked_in_epoch = 0  # orders acknowledged since it connected under the current route epoch

    # ----------------------------------------------------------------- postgres
    def _route(self) -> dict[str, Any]:
        with contextlib.suppress(FileNotFoundError):
            self.route_mtime = os.stat(self.root / "route.json").st_mtime
        return read_route(self.root)

    def _connect(self) -> None:
        import psycopg

        route = self._route()
        target = route.get("postgres") or {}
        if not target.get("port"):
            raise RuntimeError("route.json names no postgres primary")
        conn = psycopg.connect(
            host=target.get("host", "127.0.0.1"),
            port=int(target["port"]),
            user=target.get("user", DBUSER),
            dbname=target.get("dbname", DBNAME),
            connect_timeout=1,
            autocommit=True,
        )
        epoch = int(target.get("epoch", 0))
        if epoch != self.epoch_of_unverified and self.unverified:
            self._count_lost(conn, epoch)
        if epoch != self.epoch:
            self.acked_in_epoch = 0
        self.conn, self.target, self.epoch = conn, (target.get("host"), int(target["port"])), epoch

    def _count_lost(self, conn: Any, epoch: int) -> None:
        """The orders acked under the previous primary that the new one does not have."""
        rows = conn.execute("SELECT id FROM orders WHERE id = ANY(%s)", (self.unverified,)).fetchall()
        present = {r[0] for r in rows}
        missing = [i for i in self.unverified if i not in present]
        self.lost[str(self.epoch_of_unverified)] = missing
        switch = {
            "from_epoch": self.epoch_of_unverified,
            "epoch": epoch,
            "verified": True,
            "acked_before": len(self.unverified),
            "missing_count": len(missing),
            "missing_ids": missing[:1000],
            "acked_after": 0,
            "seen_at": time.time(),
        }
        with self.changed:
            self.switch = switch
            self.changed.notify_all()
        self.pending_outage = {
            "from_epoch": self.epoch_of_unverified,
            "to_epoch": epoch,
            "last_ack_at": self.last_ack_at,
        }
        self.unverified = []
        self.epoch_of_unverified = epoch

    def _drop(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(Exception):  # already broken
                self.conn.close()
        self.conn = None

    def write_one(self) -> None:
        if self.conn is None or self._route_changed():
            self._drop()
            self._connect()
        order_id = self.next_id
        self.conn.execute(
            "INSERT INTO orders (id, epoch, amount_cents) VALUES (%s, %s, %s) ON CONFLICT (id) DO NOTHING",
            (order_id, self.epoch, 100 + order_id % 9000),
        )
        now = time.time()
        self.log.write(f"{order_id} {self.epoch} {now:.6f}\n")
        self.log.flush()
        os.fsync(self.log.fileno())
        self.next_id += 1
        self.acked_total += 1
        self.unverified.append(order_id)
        self.epoch_of_unverified = self.epoch
        if self.pending_outage is not None:
            before = self.pending_outage.pop("last_ack_at")
            self.pending_outage["seconds"] = round(now - before, 3) if before else None
            self.outages.append(self.pending_outage)
            self.pending_outage = None
        self.last_ack_at = now
        self.acked_in_epoch += 1
        with self.changed:
            if self.switch is not None and self.switch["epoch"] == self.epoch:
                self.switch["acked_after"] += 1
                self.switch.setdefault("first_ack_after_seconds", round(now - self.switch["seen_at"], 3))
            self.changed.notify_all()
        self._write_redis(order_id)

    def _route_changed(self) -> bool:
        try:
            return os.stat(self.root / "route.json").st_mtime != self.route_mtime
        except FileNotFoundError:
            return False

    # ----------------------------------------------------------------- redis (best effort)
    def _write_redis(self, order_id: int) -> None:
        now = time.monotonic()
        target = (self._route().get("redis") or {}) if self.redis is None else None
        if self.redis is None:
            if now < self.redis_retry_at or not target.get("port"):
                return
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            self.redis = redis.Redis(
                host=target.get("host", "127.0.0.1"),
                port=int(target["port"]),
                socket_timeout=0.2,
                socket_connect_timeout=0.2,
                retry=Retry(NoBackoff(), 0),  # never hold up the orders for the cache
            )
            self.redis_target = (target.get("host"), int(target["port"]))
        try:
            self.redis.set("lab:last_order", order_id)
            self.redis.incr("lab:orders")
        except Exception:
            self.redis = None
            self.redis_retry_at = now + 1.0

    # ----------------------------------------------------------------- loop
    def status(self) -> dict[str, Any]:
        return {
            "pid": os.getpid(),
            "connected": self.conn is not None,
            "target": f"{self.target[0]}:{self.target[1]}" if self.target else None,
            "epoch": self.epoch,
            "acked_total": self.acked_total,
            "acked_in_epoch": self.acked_in_epoch,
            "last_id": self.next_id - 1,
            "last_ack_at": self.last_ack_at,
            "errors": self.errors,
            "last_error": self.last_error,
            "lost": self.lost,
            "lost_count": sum(len(v) for v in self.lost.values()),
            "outages": self.outages,
            "redis_target": f"{self.redis_target[0]}:{self.redis_target[1]}" if self.redis else None,
            "switch": dict(self.switch) if self.switch else None,
            "updated_at": time.time(),
        }

    def run(self) -> None:
        next_status = 0.0
        while not self.stopping:
            try:
                self.write_one()
            except Exception as exc:
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
                self._drop()
                time.sleep(0.05)
            if time.monotonic() >= next_status:
                write_json_atomic(app_status_path(self.root), self.status())
                next_status = time.monotonic() + 0.5
            time.sleep(self.interval)
        write_json_atomic(app_status_path(self.root), {**self.status(), "stopped": True})


def token_of(root: Path) -> str:
    """The admin token `lab up` wrote (mode 0600) for this app; also stored as a DRPlan secret."""
    return (root / "app-token").read_text().strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=0.02, help="seconds between orders")
    parser.add_argument("--http-port", type=int, default=0, help="admin HTTP API on 127.0.0.1 (0: none)")
    args = parser.parse_args(argv)
    app = OrdersApp(args.dir, args.interval)
    server = None
    if args.http_port:
        from lab.httpapi import serve

        server = serve(app, args.http_port, token_of(args.dir))

    def stop(*_: Any) -> None:
        app.stopping = True
        if server is not None:
            threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    app.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
