"""The console through the cluster's proxy: the web node that holds the page's websocket is killed with -9;
the page reconnects through HAProxy to the other node with ?after=SEQ and shows every event exactly once
(issue 15, point 3). Runs against scripts/cluster.py's real processes, not this run's test database."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from drplan.tests.cluster_support import (
    HAPROXY_MISSING,
    alive,
    cluster_command,
    haproxy_command,
    in_cluster,
    running_cluster,
    wait,
)
from e2e.conftest import ACTION_TIMEOUT_MS, NAVIGATION_TIMEOUT_MS, screenshot

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(HAPROXY_MISSING, reason="haproxy is not installed (scripts/ensure_haproxy.sh)"),
]

STEPS = 8
START_RUN = f"""
import json
from django.contrib.auth.models import User
from django.utils import timezone
from failover import services
from runbooks.choices import VersionStatus
from runbooks.models import RunbookVersion
from runbooks.services import import_runbook_document
steps = [{{"id": f"s{{i}}", "title": f"Step {{i}}", "action": "shell",
          "with": {{"argv": ["sh", "-c", f"echo line of s{{i}}; sleep 1.5"]}},
          **({{"needs": [f"s{{i - 1}}"]}} if i else {{}})}} for i in range({STEPS})]
version = import_runbook_document({{"name": "Cluster console", "slug": "cluster-console", "version": "1.0.0",
                                   "category": "maintenance", "steps": steps}})
RunbookVersion.objects.filter(pk=version.pk).update(status=VersionStatus.APPROVED, approved_at=timezone.now())
version.refresh_from_db()
execution = services.execute_runbook(version, actor=User.objects.get(username="operator"), reason="cluster test")
print(json.dumps(execution.pk))
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[dict[str, Any]]:
    yield from running_cluster()


def test_the_console_survives_the_loss_of_its_web_node_and_shows_each_event_once(browser, cluster) -> None:
    proxy = f"http://127.0.0.1:{cluster['ports']['proxy']}"
    haproxy_command(cluster, "disable server web/web2")  # the page and its websocket go to web1
    context = browser.new_context()
    context.set_default_timeout(ACTION_TIMEOUT_MS)
    context.set_default_navigation_timeout(NAVIGATION_TIMEOUT_MS)
    page = context.new_page()
    page.goto(f"{proxy}/admin/login/?next=/dashboard/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "operator-demo-pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{proxy}/dashboard/")

    pk = in_cluster(cluster, START_RUN)
    page.goto(f"{proxy}/console/executions/{pk}/")
    page.evaluate("window.__notReloaded = true")
    page.wait_for_function("document.querySelectorAll('.step-pane .log .line').length >= 2", timeout=90_000)

    haproxy_command(cluster, "enable server web/web2")
    web1 = cluster["processes"]["web1"]["pid"]
    os.killpg(web1, signal.SIGKILL)
    wait(lambda: not alive(web1), 15, "web1 is gone")

    for i in range(STEPS):
        page.wait_for_function(
            f"""document.querySelector('.step-pane[data-step-key="s{i}"] .step-status .label')
                .textContent.toLowerCase().includes('succeeded')""",
            timeout=120_000,
        )
    for i in range(STEPS):
        lines = page.locator(f'.step-pane[data-step-key="s{i}"] .log .line').all_text_contents()
        assert [line.strip() for line in lines] == [f"line of s{i}"], f"s{i}: each output line exactly once"
    assert page.evaluate("window.__notReloaded") is True, "live, without a reload"
    screenshot(page, "cluster-console-after-node-loss")
    context.close()
    cluster_command(cluster, "restart", "web1")
