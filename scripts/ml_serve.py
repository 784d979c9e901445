"""Start DRPlan's ML service (127.0.0.1:8045) and, optionally, the rest of DRPlan next to it.

    python scripts/ml_serve.py [--host 127.0.0.1] [--port 8045] [-- COMMAND ...]

The service is daphne serving drplan.ml_asgi (settings drplan.ml_settings), which loads the
models once before it accepts a request; a missing or corrupt model file stops it at once with a line
naming the file. With a COMMAND (`make run` passes scripts/serve.py and its arguments) that command runs
too: Ctrl-C or SIGTERM stops both, and when the command ends the service is stopped. If the service dies,
the command keeps running (the main application says "prediction unavailable") and this says so.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def service_argv(host: str, port: int) -> list[str]:
    return [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "drplan.ml_asgi:application"]


def main() -> int:
    argv = sys.argv[1:]
    command: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, command = argv[:split], argv[split + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8045)
    args = parser.parse_args(argv)

    env = dict(os.environ, DJANGO_SETTINGS_MODULE="drplan.ml_settings")
    service = subprocess.Popen(service_argv(args.host, args.port), cwd=ROOT, env=env, start_new_session=True)
    print(f"[ml] ML service (pid {service.pid}) on http://{args.host}:{args.port}/ (schema at /schema/)", flush=True)
    other = subprocess.Popen(command, cwd=ROOT) if command else None

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code, reported = 0, False
    while not stopping:
        if service.poll() is not None and not reported:
            reported = True
            print(f"[ml] the ML service exited with {service.returncode}", flush=True)
            if other is None:
                exit_code = service.returncode or 1
                break
        if other is not None and other.poll() is not None:
            exit_code = other.returncode
            break
        time.sleep(0.3)
    for proc in (other, service):
        if proc is not None and proc.poll() is None:
            if proc is service:
                os.killpg(proc.pid, signal.SIGTERM)
            else:
                proc.send_signal(signal.SIGTERM)
    for proc in (other, service):
        if proc is None:
            continue
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            if proc is service:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                proc.kill()
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
