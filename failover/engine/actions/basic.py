"""noop and wait."""

from __future__ import annotations

from typing import Any

from failover.engine.actions import ActionResult, StepContext, executor


@executor("noop")
def run_noop(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    return ActionResult(True)


@executor("wait")
def run_wait(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    seconds = float(params.get("seconds", 0))
    if ctx.timeout is not None and seconds > ctx.timeout:
        ctx.cancelled.wait(ctx.timeout)
        return ActionResult(False, error=f"timed out after {ctx.timeout:g}s")
    if ctx.cancelled.wait(seconds):
        return ActionResult(False, error="cancelled")
    return ActionResult(True, output={"waited_seconds": seconds})
