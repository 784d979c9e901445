"""Runbook import timing: each real document in ../shared/data/runbooks (else the copies in
runbooks/tests/data/import) converted and imported, as a ratio to parsing the same file with a plain
yaml.safe_load / json.loads (defusedxml for XML) measured in the same run.

    .venv/bin/python bench/import.py [--repeat 20] [--dir PATH]

Per file, the median of --repeat runs of: the baseline (parse only); convert (detect the format, parse with
the importers' limits, convert to a runbook document and validate it: runbooks.documents.normalise); import
(all of it into the database: the runbook, its version, steps, parameters, provenance, report and audit
entries, in a transaction rolled back after each run so every run imports anew). A temporary var dir with its
own SQLite database (DRPLAN_VAR_DIR; any DATABASE_URL is ignored), removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data" / "runbooks"
COPIED = ROOT / "runbooks" / "tests" / "data" / "import"


class Rollback(Exception):
    pass


def median_ms(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        function()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--dir", type=Path, help="documents to import (default: ../shared/data/runbooks)")
    args = parser.parse_args()
    source = args.dir or (SHARED if SHARED.is_dir() else COPIED)
    files = sorted(
        p
        for p in source.rglob("*")
        if p.is_file() and p.suffix in (".json", ".yml", ".yaml", ".xml") and not p.name.endswith(".metadata.json")
    )
    var_dir = Path(tempfile.mkdtemp(prefix="drplan-bench-import-"))
    try:
        sys.path.insert(0, str(ROOT))
        from bench.api import configure_environment

        configure_environment(var_dir)  # a private SQLite database, development mode
        import django

        django.setup()
        import yaml
        from defusedxml import ElementTree
        from django.core.management import call_command
        from django.db import transaction

        from runbooks import documents
        from runbooks.importers.service import convert, import_file

        call_command("migrate", verbosity=0)
        load = os.getloadavg()
        print(
            f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores, Python "
            f"{platform.python_version()}, load {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}, {len(files)} files "
            f"from {source}, median of {args.repeat}"
        )
        print("| file | format | bytes | steps | parse ms | convert ms | × parse | import ms | × parse |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        ratios = []
        for path in files:
            text = path.read_text(encoding="utf-8")

            def baseline(text=text, path=path) -> None:
                if path.suffix == ".xml":
                    ElementTree.fromstring(text)
                elif path.suffix == ".json":
                    json.loads(text)
                else:
                    yaml.safe_load(text)

            def converted(text=text) -> None:
                _, conversion = convert(text)
                documents.normalise(conversion.document)

            def imported(text=text, name=path.name) -> None:
                try:
                    with transaction.atomic():
                        import_file(text, filename=name)
                        raise Rollback
                except Rollback:
                    pass

            fmt, conversion = convert(text)
            base = median_ms(baseline, args.repeat)
            conv = median_ms(converted, args.repeat)
            full = median_ms(imported, args.repeat)
            ratios.append((conv / base, full / base))
            print(
                f"| {path.name} | {fmt} | {len(text.encode())} | {len(conversion.document['steps'])} | {base:.2f} | "
                f"{conv:.2f} | {conv / base:.1f} | {full:.2f} | {full / base:.1f} |"
            )
        if ratios:
            print(
                f"\nmedian ratio to parsing: convert {statistics.median(r[0] for r in ratios):.1f}×, "
                f"import {statistics.median(r[1] for r in ratios):.1f}×"
            )
    finally:
        shutil.rmtree(var_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
