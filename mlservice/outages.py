"""The Monte Carlo's tail next to real incident durations: the AWS, Azure and GCP status-page incidents of
2018-2020 in ../shared/data/outages/ (atlarge-research/cloud-uptime-archive, MIT; its SOURCE.md). Only read
when that directory is there; nothing of it is shipped.

What is compared is shape, not level: an incident's duration runs from the start of impact to its end
(detection, diagnosis, the fix), a DR plan's recovery from the disaster's declaration to the last step, so
their medians are not comparable. Their spreads are: P90/P50 and P99/P50 and the standard deviation of log
duration."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings

INCIDENTS = Path("data/outages/cloud-uptime-archive/infra_cloud_incidents_2018-2020.csv")


def shared_dir() -> Path:
    return Path(settings.BASE_DIR).parent / "shared"


def incident_minutes(directory: Path | None = None) -> dict[str, np.ndarray] | None:
    """vendor → durations in minutes (rows with a non-positive duration left out: the source flags them as bad
    data); None when the file is not there."""
    path = (directory or shared_dir()) / INCIDENTS
    if not path.is_file():
        return None
    out: dict[str, list[float]] = {}
    with path.open(newline="") as stream:
        for row in csv.DictReader(stream):
            try:
                minutes = float(row["duration_minutes"])
            except (KeyError, ValueError):
                continue
            if minutes > 0:
                out.setdefault(row["vendor"], []).append(minutes)
    return {vendor: np.array(values) for vendor, values in out.items()}


def tail_shape(values: np.ndarray) -> dict[str, float]:
    p50, p90, p99 = np.percentile(values, [50, 90, 99])
    return {
        "count": int(values.size),
        "p50": round(float(p50), 1),
        "p90_over_p50": round(float(p90 / p50), 2),
        "p99_over_p50": round(float(p99 / p50), 2),
        "sigma_log": round(float(np.std(np.log(values))), 3),
    }


def compare(simulated_totals: dict[str, np.ndarray], directory: Path | None = None) -> dict[str, Any] | None:
    incidents = incident_minutes(directory)
    if incidents is None:
        return None
    every = np.concatenate(list(incidents.values()))
    return {
        "source": "atlarge-research/cloud-uptime-archive, infra_cloud_incidents_2018-2020.csv (MIT)",
        "incidents": {"all": tail_shape(every), **{v: tail_shape(d) for v, d in sorted(incidents.items())}},
        "simulated_plans": {name: tail_shape(totals) for name, totals in simulated_totals.items()},
    }
