"""Functions the `python` action may call (settings.DRPLAN_PYTHON_ACTIONS lists this module).

Each takes the StepContext first, then keyword arguments, and returns the step's output.
Put site-specific extensions in a module of your own and add it to DRPLAN_PYTHON_ACTIONS.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from failover.engine.actions import StepContext


def echo(ctx: StepContext, **kwargs: Any) -> dict[str, Any]:
    """Return the keyword arguments as the output (a template or wiring check)."""
    ctx.log(f"echo: {sorted(kwargs)}")
    return dict(kwargs)


def switch_route(ctx: StepContext, *, file: str, target: str) -> dict[str, Any]:
    """A DNS/load-balancer switch stand-in: atomically write `target` to a routing file.

    Returns {"file", "previous", "target"}, so a rollback step can switch back to `previous`.
    """
    path = Path(file)
    previous = path.read_text().strip() if path.exists() else None
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.name}.", delete=False) as handle:
        handle.write(f"{target}\n")
    os.replace(handle.name, path)  # atomic: readers see the old or the new route, never half
    ctx.log(f"route {path}: {previous} -> {target}")
    return {"file": str(path), "previous": previous, "target": target}
