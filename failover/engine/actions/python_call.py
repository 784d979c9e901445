"""The python action: call a registered Python function by dotted path, for extensions.

    action: python
    with:
      callable: failover.engine.extensions.switch_route
      kwargs: {file: /etc/drplan/route, target: "{{ params.target_site }}"}

Only callables in modules listed in settings.DRPLAN_PYTHON_ACTIONS (module prefixes, from the
environment variable of that name; by default failover.engine.extensions) can be called; anything
else is refused. The
function is called as `function(ctx, **kwargs)` with the StepContext (log, timeout,
cancelled, secret) and returns a dict (the step's output), None, or an ActionResult.
A raised exception fails the step. It runs in a thread: on timeout or cancel the step
fails at once, and the function should watch `ctx.cancelled` to stop its own work.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from django.conf import settings

from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.actions.blocking import run_blocking, step_timeout


def allowed_modules() -> list[str]:
    """The module prefixes of settings.DRPLAN_PYTHON_ACTIONS. A prefix allows its submodules too: list the
    module that holds the runbook functions, not a package that also holds helpers."""
    return list(settings.DRPLAN_PYTHON_ACTIONS)


def resolve_callable(path: str) -> Callable[..., Any]:
    """The function at a dotted path, if the allow-list permits it; ValueError (saying why) otherwise."""
    module_name, _, attribute = str(path).rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is not a dotted path (module.function)")
    allowed = allowed_modules()
    if not any(module_name == prefix or module_name.startswith(prefix + ".") for prefix in allowed):
        listed = ", ".join(allowed) or "none"
        raise ValueError(f"{path!r} is not allowed: its module is not in settings.DRPLAN_PYTHON_ACTIONS ({listed})")
    if attribute.startswith("_"):
        raise ValueError(f"{path!r} is private")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"cannot import {module_name!r}: {exc}") from None
    function = getattr(module, attribute, None)
    if not callable(function):
        raise ValueError(f"{module_name!r} has no function {attribute!r}")
    return function


def python_callable_problem(path: str) -> str | None:
    """None if `path` can be called by the python action, else why not (for readiness checks)."""
    try:
        resolve_callable(path)
    except ValueError as exc:
        return str(exc)
    return None


@executor("python")
def run_python(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    path = str(params.get("callable") or "")
    try:
        function = resolve_callable(path)
    except ValueError as exc:
        return ActionResult(False, error=f"python: {exc}")
    kwargs = params.get("kwargs") or {}
    if not isinstance(kwargs, dict):
        return ActionResult(False, error=f"python {path}: kwargs must be an object")
    outcome = run_blocking(lambda: function(ctx, **kwargs), ctx, step_timeout(ctx))
    if outcome.stopped:
        return ActionResult(False, error=f"python {path}: {outcome.stopped}")
    if outcome.exception is not None:
        exc = outcome.exception
        return ActionResult(False, error=f"python {path}: {type(exc).__name__}: {exc}")
    value = outcome.value
    if isinstance(value, ActionResult):
        return value
    if value is None:
        return ActionResult(True)
    if isinstance(value, dict):
        return ActionResult(True, output=value)
    return ActionResult(True, output={"result": value})
