"""ML service benchmark (issue 12): training time, HTTP latency at 1 and 20 concurrent clients, the Monte
Carlo's time for 10,000 simulations of a 200-step DAG, the service's memory, and every model's validation
metrics next to its baseline.

    .venv/bin/python bench/ml.py [--requests 400] [--quick]    (make bench-ml)

Steps: a temporary var dir with its own SQLite database (DRPLAN_VAR_DIR), migrate, the demo data, then
`ml train` in this process (timed per model); scripts/ml_serve.py on a free 127.0.0.1 port; each endpoint
driven by 1 and by 20 clients (threads, http.client) after a warm-up; the service's memory (resident and
proportional set size of gunicorn's master and workers) after the run; then the server is stopped by its
pid and the temp dir removed. Prints a Markdown section for bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def drive(port: int, path: str, body: bytes, clients: int, total: int) -> list[float]:
    """Latencies in ms of `total` POSTs (GET when body is empty) spread over `clients` keep-alive clients."""
    latencies: list[float] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    per_client = max(1, total // clients)

    def worker() -> None:
        try:
            run()
        except BaseException as exc:  # re-raised in the caller's thread
            errors.append(exc)

    def run() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine = []
        for _ in range(per_client):
            started = time.perf_counter()
            if body:
                conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
            else:
                conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            mine.append((time.perf_counter() - started) * 1000)
            if response.status != 200:
                raise RuntimeError(f"{path}: {response.status}")
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return latencies


def monte_carlo_200() -> dict[str, float]:
    from mlservice.simulation import Distribution, SimStep, simulate

    rng = random.Random(200)
    steps = []
    for i in range(200):
        needs = [f"s{j}" for j in rng.sample(range(i), min(i, rng.randint(0, 3)))]
        steps.append(SimStep(f"s{i}", Distribution("lognormal", median=rng.uniform(5, 300), sigma=0.5), needs))
    out = {}
    for label, parallelism in (("unlimited", None), ("parallelism 8", 8)):
        times = []
        for seed in range(5):
            started = time.perf_counter()
            simulate(steps, parallelism=parallelism, simulations=10_000, seed=seed)
            times.append(time.perf_counter() - started)
        out[label] = float(np.median(times))
    return out


def request_parts(features: dict[str, float | None]) -> dict[str, float]:
    """Median µs, in this process, of the per-request parts of a predict-rto (features) request that the service
    makes fast, next to what they replace (measured in the same run): the request check against jsonschema
    alone, the RTO trees walked in NumPy against XGBoost's inplace_predict."""
    import timeit

    from jsonschema import Draft202012Validator

    from mlservice import registry, rto
    from mlservice.api import requests

    models = registry.load()
    body = {"features": features, "rto_seconds": 900}
    x = rto.vector(rto.check_features(features))
    validator = Draft202012Validator(requests.PREDICT_RTO)
    parts = {
        "request check (quick check, then jsonschema only on refusal)": lambda: requests.validate(
            requests.PREDICT_RTO, body
        ),
        "jsonschema alone": lambda: list(validator.iter_errors(body)),
        "RTO model, trees in NumPy": lambda: models.rto_trees.predict(x),
        "RTO model, XGBoost inplace_predict": lambda: models.rto_booster.inplace_predict(x),
    }
    return {
        label: float(np.median(timeit.repeat(call, number=200, repeat=10))) / 200 * 1e6 for label, call in parts.items()
    }


def memory_mib(pid: int) -> tuple[float, float]:
    """(RSS, PSS) in MiB: PSS shares the pages the forked workers share with the master between them."""
    values = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        parts = line.split()
        if parts and parts[0] in ("Rss:", "Pss:"):
            values[parts[0]] = int(parts[1]) / 1024
    return values.get("Rss:", float("nan")), values.get("Pss:", float("nan"))


def children(parent: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per endpoint and concurrency")
    parser.add_argument("--quick", action="store_true", help="small training sets (a smoke run)")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn worker processes of the service")
    args = parser.parse_args()

    load_before = os.getloadavg()
    var = Path(tempfile.mkdtemp(prefix="drplan-bench-ml-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DRPLAN_", "DATABASE_URL", "REDIS_URL"))}
    env["DRPLAN_VAR_DIR"] = str(var)
    os.environ.update({"DRPLAN_VAR_DIR": str(var), "DJANGO_SETTINGS_MODULE": "drplan.settings"})
    server = None
    try:
        for command in (["migrate", "--noinput"], ["seed_demo", "--if-empty"]):
            subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
        import django

        django.setup()
        from mlservice import artifacts, training

        timings = training.train_all(quick=args.quick, log=lambda *_: None)
        cards = {name: artifacts.load_card(name) for name in artifacts.MODEL_NAMES}
        mc = monte_carlo_200()

        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "scripts/ml_serve.py", "--port", str(port), "--workers", str(args.workers)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                drive(port, "/health", b"", 1, 1)
                break
            except (OSError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        features = {f: float(v) if v is not None else None for f, v in _plan_features(port).items()}
        parts = request_parts(features)
        smart = dict.fromkeys(cards["failure_risk"]["features"], 0.0) | {"smart_5_raw": 8.0}
        endpoints = [
            ("POST /predict-rto (features)", "/predict-rto", {"features": features, "rto_seconds": 900}),
            ("POST /predict-rto (plan)", "/predict-rto", {"plan": "core-commerce"}),
            ("POST /estimate-recovery-time (plan, 10,000 sims)", "/estimate-recovery-time", {"plan": "core-commerce"}),
            ("POST /analyze-failure-risk", "/analyze-failure-risk", {"smart": smart}),
            (
                "POST /score-impact (8 apps, exact)",
                "/score-impact",
                {
                    "applications": [
                        {"id": f"a{i}", "recovery_seconds": 300 + 97 * i, "cost_per_hour": 1000 * (i % 4 + 1)}
                        for i in range(8)
                    ],
                    "parallelism": 2,
                },
            ),
            ("GET /health", "/health", None),
        ]
        rows = []
        for label, path, body in endpoints:
            raw = json.dumps(body).encode() if body is not None else b""
            drive(port, path, raw, 20, 60)  # warm-up: every worker, this endpoint
            total = args.requests if "estimate" not in path else max(40, args.requests // 5)
            one = drive(port, path, raw, 1, total)
            twenty = drive(port, path, raw, 20, total)
            rows.append((label, total, one, twenty))
        master = children(server.pid)[0]
        memory = [memory_mib(pid) for pid in [master, *children(master)]]
    finally:
        if server is not None and server.poll() is None:
            os.kill(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        shutil.rmtree(var, ignore_errors=True)

    load_after = os.getloadavg()
    p = lambda v, q: float(np.percentile(v, q))  # noqa: E731
    print(f"### {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print()
    print(
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}; load average before "
        f"{load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f}, after "
        f"{load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f}."
    )
    print()
    print(
        "Training (`ml train`"
        + (" --quick" if args.quick else "")
        + "), seconds: "
        + ", ".join(f"{k} {v:.1f}" for k, v in timings.items())
    )
    print()
    print("| endpoint | requests | 1 client p50 ms | 1 client p99 ms | 20 clients p50 ms | 20 clients p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for label, total, one, twenty in rows:
        print(
            f"| {label} | {total} | {p(one, 50):.1f} | {p(one, 99):.1f} | {p(twenty, 50):.1f} | {p(twenty, 99):.1f} |"
        )
    print()
    print(
        "In process, parts of one predict-rto (features) request (median µs): "
        + ", ".join(f"{label} {us:.0f}" for label, us in parts.items())
    )
    print()
    print(
        "Monte Carlo, 10,000 simulations of a 200-step random DAG (median of 5): "
        + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in mc.items())
    )
    print()
    print(
        f"Service memory after the run (gunicorn master + {args.workers} workers, models loaded before the fork): "
        f"RSS {', '.join(f'{rss:.0f}' for rss, _ in memory)} MiB; proportional set size in all "
        f"{sum(pss for _, pss in memory):.0f} MiB"
    )
    print()
    r = cards["rto"]["metrics"]
    f = cards["failure_risk"]["metrics"]
    print("Validation (held out; from the model cards):")
    print()
    print(
        f"- rto ({cards['rto']['data_provenance']['source']}; {r['test_plans']} held-out plans, "
        f"{r['test_rows']} runs): P50 MAE {r['p50_mae_seconds']} s vs baseline {r['baseline']['mae_seconds']} s "
        f"(ratio {r['p50_mae_vs_baseline']}); median abs. % error {r['p50_median_absolute_percentage_error']} vs "
        f"{r['baseline']['median_absolute_percentage_error']}; P90 coverage {r['p90_coverage']} "
        f"(before the conformal offset {r['p90_coverage_before_conformal_offset']}); baseline covers "
        f"{r['baseline']['coverage']}"
    )
    b = f["baselines"]
    print(
        f"- failure_risk ({f['validation']}): ROC-AUC {f['roc_auc']}, precision {f['precision']}, recall "
        f"{f['recall']}; rule 5/196/197 > 0: ROC-AUC {b['rule_5_196_197_above_zero']['roc_auc']}, precision "
        f"{b['rule_5_196_197_above_zero']['precision']}, recall {b['rule_5_196_197_above_zero']['recall']}; "
        f"logistic regression: ROC-AUC {b['logistic_regression_log1p']['roc_auc']}; lead time (10-day file): "
        f"{json.dumps(f['lead_time_10_day_file'])}; with the time counters: ROC-AUC "
        f"{cards['failure_risk']['with_time_counters']['roc_auc']}"
    )
    i = cards["impact"]["metrics"]
    print(
        f"- impact: exact order matches brute force on {i['exact_order_matches_brute_force']}; heuristic "
        f"certified ratio on 15 applications {json.dumps(i['heuristic_certified_ratio_15_apps'])}"
    )
    tail = cards["recovery_time"]["metrics"]["tail_check_against_cloud_incidents"]
    if tail:
        print(
            f"- recovery_time tail vs cloud incidents: {json.dumps(tail['incidents']['all'])}; simulated "
            f"{json.dumps(tail['simulated_plans'])}"
        )
    return 0


def _plan_features(port: int) -> dict[str, float | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request(
        "POST", "/predict-rto", body=b'{"plan": "core-commerce"}', headers={"Content-Type": "application/json"}
    )
    answer = json.loads(conn.getresponse().read())
    conn.close()
    return answer["features"]


if __name__ == "__main__":
    sys.exit(main())
