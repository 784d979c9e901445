"""Start DRPlan's ML service (127.0.0.1:8045) and, optionally, the rest of DRPlan next to it.

    python scripts/ml_serve.py [--host 127.0.0.1] [--port 8045] [--workers 2] [-- COMMAND ...]

The service is `--workers` daphne processes serving drplan.ml_asgi (settings drplan.ml_settings) on one
listening socket that this script opens and hands to each (daphne --fd; the kernel spreads connections
between them): one Python process runs one request at a time, so one per core. Each loads the models once
before it accepts a request; a missing or corrupt model file stops it at once with a line naming the file,
and then the others are stopped too. With a COMMAND (`make run` passes scripts/serve.py and its arguments)
that command runs too: Ctrl-C or SIGTERM stops both, and when the command ends the service is stopped.
If the service dies, the command keeps running (the main application says "prediction unavailable") and this says so.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def service_argv(fd: int) -> list[str]:
    return [sys.executable, "-m", "daphne", "--fd", str(fd), "drplan.ml_asgi:application"]


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

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((args.host, args.port))
    listener.listen(256)
    fd = listener.fileno()
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="drplan.ml_settings")
    services = [
        subprocess.Popen(service_argv(fd), cwd=ROOT, env=env, start_new_session=True, pass_fds=(fd,))
        for _ in range(max(1, args.workers))
    ]
    listener.close()  # the workers hold it
    pids = ", ".join(str(s.pid) for s in services)
    print(f"[ml] ML service (pids {pids}) on http://{args.host}:{args.port}/ (schema at /schema/)", flush=True)
    other = subprocess.Popen(command, cwd=ROOT) if command else None

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code, reported = 0, False
    while not stopping:
        dead = [s for s in services if s.poll() is not None]
        if dead and not reported:
            reported = True
            print(f"[ml] the ML service exited with {dead[0].returncode}; stopping its other workers", flush=True)
            for s in services:
                if s.poll() is None:
                    os.killpg(s.pid, signal.SIGTERM)
            if other is None:
                exit_code = dead[0].returncode or 1
                break
        if other is not None and other.poll() is not None:
            exit_code = other.returncode
            break
        time.sleep(0.3)
    if other is not None and other.poll() is None:
        other.send_signal(signal.SIGTERM)
    for s in services:
        if s.poll() is None:
            os.killpg(s.pid, signal.SIGTERM)
    for proc in [*services, *([other] if other else [])]:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            if proc is other:
                proc.kill()
            else:
                os.killpg(proc.pid, signal.SIGKILL)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
