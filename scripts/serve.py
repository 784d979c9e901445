"""Start DRPlan's processes and stop them together.

    python scripts/serve.py [--host 127.0.0.1] [--ui-port 3045] [--port 4045]

Runs the web + API server (daphne, ASGI) and the django-q2 workers. Ctrl-C or
SIGTERM stops all of them; if one dies, the others are stopped too.

One daphne process listens on two ports with the same application: the web UI's port (3045, which
browsers open) and the API's (4045, for scripts and curl). 4045 is on the list of ports Chromium,
Chrome, Edge and Firefox refuse to open (ERR_UNSAFE_PORT), so people are always sent to 3045.
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
    parser.add_argument("--ui-port", type=int, default=3045, help="the web UI's port (browsers)")
    parser.add_argument("--port", type=int, default=4045, help="the API's port (scripts)")
    args = parser.parse_args()
    ports = list(dict.fromkeys([args.ui_port, args.port]))
    interface = args.host.replace(":", r"\:")  # a Twisted endpoint string escapes colons (IPv6)
    endpoints = [arg for port in ports for arg in ("-e", f"tcp:port={port}:interface={interface}")]

    python = sys.executable
    commands = {
        "web": [python, "-m", "daphne", *endpoints, "drplan.asgi:application"],
        "workers": [python, "manage.py", "qcluster"],
    }
    procs: dict[str, subprocess.Popen] = {}
    for name, argv in commands.items():
        procs[name] = subprocess.Popen(argv, cwd=ROOT, start_new_session=True)
        print(f"[serve] started {name} (pid {procs[name].pid})", flush=True)
    print(f"[serve] DRPlan web UI: http://{args.host}:{args.ui_port}/  (open this one in a browser)", flush=True)
    api = f"http://{args.host}:{args.port}/api/v1/dr/"
    print(f"[serve] API for scripts: {api}  (docs: http://{args.host}:{args.ui_port}/api/docs/)", flush=True)

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
