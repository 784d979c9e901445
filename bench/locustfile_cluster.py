"""The API load of `bench/cluster_load.py`: run by locust (headless) against the cluster's HAProxy.

Each simulated user is an operator (one API token, DRPLAN_BENCH_TOKEN) who, between pauses of 0.1-0.5 s,
mostly reads (80 %: the plans list, the executions list, the RTO/RPO overview) and sometimes triggers (20 %):
a dry-run DR test or a dry-run planned failover of a plan; while a failover of the same plan is active, both
get the documented 409 `already_active` (counted as an answer, not a failure; any other answer but 201 is).
Plans: DRPLAN_BENCH_PLANS (comma-separated plan_ids), and for DR tests DRPLAN_BENCH_TEST_PLANS (those with a
test runbook; default: the same).
"""

from __future__ import annotations

import os
import random

from locust import HttpUser, between, task

API = "/api/v1/dr"
PLANS = [p for p in os.environ.get("DRPLAN_BENCH_PLANS", "").split(",") if p]
TEST_PLANS = [p for p in os.environ.get("DRPLAN_BENCH_TEST_PLANS", "").split(",") if p] or PLANS


class Operator(HttpUser):
    wait_time = between(0.1, 0.5)

    def on_start(self) -> None:
        self.client.headers["Authorization"] = f"Token {os.environ['DRPLAN_BENCH_TOKEN']}"

    # reads: 80 %
    @task(30)
    def plans(self) -> None:
        self.client.get(f"{API}/plans", name="read: plans")

    @task(30)
    def executions(self) -> None:
        self.client.get(f"{API}/executions", name="read: executions")

    @task(20)
    def rto_rpo(self) -> None:
        self.client.get(f"{API}/rto-rpo", name="read: rto-rpo")

    # triggers: 20 %
    @task(10)
    def dr_test_dry_run(self) -> None:
        self._trigger("test", TEST_PLANS, {}, "trigger: DR test (dry run)")

    @task(10)
    def failover_dry_run(self) -> None:
        self._trigger("failover", PLANS, {"type": "planned"}, "trigger: failover (dry run)")

    def _trigger(self, path: str, plans: list[str], extra: dict, name: str) -> None:
        body = {"plan": random.choice(plans), "dry_run": True, "reason": "bench: cluster load", **extra}
        with self.client.post(f"{API}/{path}", json=body, name=name, catch_response=True) as response:
            if response.status_code == 201:
                response.success()
            elif response.status_code == 409 and _code(response) == "already_active":
                response.success()  # the documented answer while a failover of that plan is active
            else:
                response.failure(f"{response.status_code}: {response.text[:200]}")


def _code(response) -> str:
    try:
        return response.json().get("error", {}).get("code", "")
    except ValueError:
        return ""
