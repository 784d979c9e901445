"""Start DRPlan's processes and stop them together.

    python scripts/serve.py [--host 127.0.0.1] [--port 4045]

Runs the web + API server (daphne, ASGI) and the django-q2 workers. Ctrl-C or
SIGTERM stops all of them; if one dies, the others are stopped too.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4045)
    args = parser.parse_args()

    python = sys.executable
    commands = {
        "web": [python, "-m", "daphne", "-b", args.host, "-p", str(args.port), "drplan.asgi:application"],
        "workers": [python, "manage.py", "qcluster"],
    }
    procs: dict[str, subprocess.Popen] = {}
    for name, argv in commands.items():
        procs[name] = subprocess.Popen(argv, cwd=ROOT, start_new_session=True)
        print(f"[serve] started {name} (pid {procs[name].pid})", flush=True)
    print(f"[serve] DRPlan on http://{args.host}:{args.port}/admin/  API http://{args.host}:{args.port}/api/docs/")

    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    exit_code = 0
    while not stopping:
        for name, proc in procs.items():
            if proc.poll() is not None:
                print(f"[serve] {name} exited with {proc.returncode}; stopping the rest", flush=True)
                exit_code = proc.returncode or 1
                stopping = True
        time.sleep(0.5)
    for proc in procs.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs.values():
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
