"""Start DRPlan's ML service (127.0.0.1:8045) and, optionally, the rest of DRPlan next to it.

    python scripts/ml_serve.py [--host 127.0.0.1] [--port 8045] [--workers 2] [-- COMMAND ...]

The service is gunicorn serving drplan.ml_wsgi (settings drplan.ml_settings) with `--workers` processes
(one Python process runs one request at a time: one per core). The models are loaded once, in gunicorn's
master before it forks the workers (--preload); a missing or corrupt model file stops the start at once
with a line naming the file. With a COMMAND (`make run` passes scripts/serve.py and its arguments) that
command runs too: Ctrl-C or SIGTERM stops both, and when the command ends the service is stopped. If the
service crashes it is restarted with backoff (scripts/supervise.py) while the command keeps running (the
main application says "prediction unavailable" meanwhile); if it cannot start at all, it is left down.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from supervise import Child, run


def service_argv(host: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--preload",
        "--timeout",
        "60",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        "drplan.ml_wsgi:application",
    ]


def main() -> int:
    argv = sys.argv[1:]
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8045)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)

    # One thread per worker: a request is small, the workers are the parallelism, and an OpenMP thread pool
    # started before gunicorn forks would hang the workers (libgomp is not fork-safe).
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="drplan.ml_settings", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    argv = service_argv(args.host, args.port, max(1, args.workers))
    print(f"[ml] ML service on http://{args.host}:{args.port}/ (schema at /schema/)", flush=True)
    children = [Child("ML service", argv, env=env, essential=not command)]
    if command:
        children.append(Child(" ".join(Path(part).name for part in command[:2]), command, restart=False))
    return run(children, prefix="ml")


if __name__ == "__main__":
    sys.exit(main())
