"""Notifications benchmark: how fast an approval request reaches its approvers, and what notifying costs a run.

    .venv/bin/python bench/notifications.py [--repeat 10]

A temporary var dir with its own SQLite database (the embedded default), a real `manage.py qcluster`
(2 workers, ORM broker) and a real HTTP receiver on 127.0.0.1 that checks each signature.

  A  trigger -> receipt: a failover of a plan with one go/no-go level is triggered (the service the API
     calls); the approvers' webhook receives the approval request. Baseline in the same run: a test
     message queued to the same channel (the queue and the POST alone). Median and worst of --repeat.
  B  what notifying costs a run: a chain of 50 no-op steps run in this process, with no subscription and
     with one subscription to every event kind (its deliveries are only queued). Ratio of the spans.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.api import configure_environment, machine  # noqa: E402


def wait(predicate, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for a delivery")
        time.sleep(0.005)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    var_dir = Path(tempfile.mkdtemp(prefix="drplan-bench-notify-"))
    env = configure_environment(var_dir)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth.models import Group, User

    from analytics.notifications import services
    from analytics.notifications.choices import EVENT_KINDS
    from analytics.notifications.models import NotificationChannel, Subscription
    from analytics.tests.notification_support import WebhookReceiver, _handler
    from core.roles import setup_roles
    from failover import services as failover_services
    from failover.engine.runner import run_execution
    from failover.models import FailoverExecution
    from failover.tests.engine_factories import add_approval_levels, three_app_plan
    from failover.tests.engine_support import make_execution, start, stop

    setup_roles()
    operator = User.objects.create_user("operator", email="operator@example.com")
    operator.groups.add(Group.objects.get(name="operator"))
    approver = User.objects.create_user("approver", email="approver@example.com")
    approver.groups.add(Group.objects.get(name="approver"))
    plan, _ = three_app_plan(approval_timeout_seconds=3600)
    add_approval_levels(plan, ("approver", 1))

    receiver = WebhookReceiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = NotificationChannel.objects.create(name="approvers", kind="webhook", url=receiver.url)
    services.save_channel_secret(hook, receiver.secret)
    Subscription.objects.create(plan=plan, role="approver", event_kinds=["approval_waiting"], channel=hook)

    cluster = start(["manage.py", "qcluster"], {**env, "DRPLAN_WORKERS": "2"}, var_dir / "qcluster.log")
    baseline, approval = [], []
    try:
        services.send_test_message(hook, None)  # warm-up: the cluster is up once this arrives
        wait(lambda: len(receiver.received) == 1)
        for _ in range(args.repeat):
            count, started = len(receiver.received), time.monotonic()
            services.send_test_message(hook, None)
            wait(lambda count=count: len(receiver.received) > count)
            baseline.append(receiver.received[-1].at - started)

            count, started = len(receiver.received), time.monotonic()
            execution = failover_services.start_failover(plan, actor=operator, reason="bench")
            wait(lambda count=count: len(receiver.received) > count)
            approval.append(receiver.received[-1].at - started)
            FailoverExecution.objects.filter(pk=execution.pk).update(status="cancelled")
    finally:
        stop(cluster)
    assert all(r.verified for r in receiver.received), "a signature did not verify"

    chain = [{"key": f"s{i:02d}", "action": "noop", **({"needs": [f"s{i - 1:02d}"]} if i else {})} for i in range(50)]

    def span() -> float:
        execution = make_execution(chain)
        started = time.monotonic()
        assert run_execution(execution.pk) == "completed"
        return time.monotonic() - started

    quiet = statistics.median(span() for _ in range(3))
    Subscription.objects.create(role="approver", event_kinds=list(EVENT_KINDS), channel=hook)
    notified = statistics.median(span() for _ in range(3))
    server.shutdown()

    print(f"machine: {machine()}")
    print(
        f"A  test message (queue + POST), median {statistics.median(baseline) * 1000:.0f} ms, worst "
        f"{max(baseline) * 1000:.0f} ms"
    )
    ratio = statistics.median(approval) / statistics.median(baseline)
    print(
        f"A  approval request trigger -> webhook, median {statistics.median(approval) * 1000:.0f} ms, worst "
        f"{max(approval) * 1000:.0f} ms (ratio to the test message {ratio:.2f}; goal: within 5 s)"
    )
    print(
        f"B  50-step chain: {quiet * 1000:.0f} ms without subscriptions, {notified * 1000:.0f} ms with one to every "
        f"event kind (ratio {notified / quiet:.2f})"
    )
    shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
