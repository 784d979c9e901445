"""Run a command against a real, throw-away PostgreSQL 16 server.

    python scripts/with_postgres.py pytest -q

Starts a server from the `pgserver` wheel under var/test-postgres/, points
DATABASE_URL at it, runs the command, and stops the server whatever happens.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import quote


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: with_postgres.py COMMAND [ARGS...]", file=sys.stderr)
        return 2
    import pgserver

    root = Path(os.environ.get("DRPLAN_VAR_DIR", Path(__file__).resolve().parent.parent / "var"))
    root.mkdir(parents=True, exist_ok=True)
    pgdata = Path(tempfile.mkdtemp(prefix="test-postgres-", dir=root))
    server = pgserver.get_server(pgdata, cleanup_mode="delete")
    try:
        socket_dir = server.get_postmaster_info().socket_dir
        url = f"postgres://postgres@{quote(str(socket_dir), safe='')}/postgres"
        env = {**os.environ, "DATABASE_URL": url}
        print(f"[with_postgres] PostgreSQL 16 at {socket_dir} (data {pgdata})", flush=True)
        return subprocess.call(argv, env=env)
    finally:
        server.cleanup()
        shutil.rmtree(pgdata, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
