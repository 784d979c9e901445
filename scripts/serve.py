"""Start DRPlan's processes and stop them together.

    python scripts/serve.py [--host 127.0.0.1] [--ui-port 3045] [--port 4045]

Runs the web + API server (daphne, ASGI) and the django-q2 workers under a small supervisor
(scripts/supervise.py): if one crashes, it is restarted with backoff while the other keeps serving
(with whatever it had started killed, so no orphan is left); Ctrl-C or SIGTERM stops all of them.

One daphne process listens on two ports with the same application: the web UI's port (3045, which
browsers open) and the API's (4045, for scripts and curl). 4045 is on the list of ports Chromium,
Chrome, Edge and Firefox refuse to open (ERR_UNSAFE_PORT), so people are always sent to 3045.
"""

from __future__ import annotations

import argparse
import sys

from supervise import Child, run


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
    children = [
        Child("web", [python, "-m", "daphne", *endpoints, "drplan.asgi:application"]),
        Child("workers", [python, "manage.py", "qcluster"]),
    ]
    print(f"[serve] DRPlan web UI: http://{args.host}:{args.ui_port}/  (open this one in a browser)", flush=True)
    api = f"http://{args.host}:{args.port}/api/v1/dr/"
    print(f"[serve] API for scripts: {api}  (docs: http://{args.host}:{args.ui_port}/api/docs/)", flush=True)
    return run(children, prefix="serve")


if __name__ == "__main__":
    sys.exit(main())
