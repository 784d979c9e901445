"""The python action: only allow-listed callables run; results, errors, timeouts and cancel."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from failover.engine.actions import ActionResult, StepContext, run_action
from failover.engine.actions.python_call import python_callable_problem
from runbooks.actions import get_action

HERE = "failover.tests.test_actions_python"
calls: list[str] = []


def _ctx(timeout: float | None = 5, lines: list[str] | None = None) -> StepContext:
    return StepContext(execution_id=1, step_key="py", timeout=timeout, log=(lines if lines is not None else []).append)


def _run(params: dict, ctx: StepContext | None = None) -> ActionResult:
    errors = list(get_action("python").validator.iter_errors(params))
    assert errors == [], [e.message for e in errors]
    return run_action("python", params, ctx or _ctx())


# Callables used when this module is allow-listed.
def boom(ctx: StepContext, **kwargs: Any) -> None:
    raise RuntimeError("replica is not in sync")


def measured(ctx: StepContext) -> ActionResult:
    return ActionResult(True, output={"switched": True}, measurements={"rpo_seconds": 4.0})


def scalar(ctx: StepContext) -> int:
    return 7


def patient(ctx: StepContext, seconds: float) -> dict[str, Any]:
    stopped = ctx.cancelled.wait(seconds)
    if stopped:
        time.sleep(0.5)  # cleaning up: the step has already reported the cancel
    calls.append("patient stopped" if stopped else "patient done")
    return {"stopped": stopped}


def _private(ctx: StepContext) -> None:
    calls.append("private ran")


def test_echo_extension_returns_its_kwargs() -> None:
    lines: list[str] = []
    result = _run({"callable": "failover.engine.extensions.echo", "kwargs": {"site": "dc2", "n": 3}}, _ctx(lines=lines))
    assert (result.ok, result.output, result.error) == (True, {"site": "dc2", "n": 3}, "")
    assert lines == ["echo: ['n', 'site']"]


def test_switch_route_writes_the_routing_file(tmp_path: Path) -> None:
    route = tmp_path / "route"
    params = {"callable": "failover.engine.extensions.switch_route", "kwargs": {"file": str(route), "target": "dc2"}}
    first = _run(params)
    assert first.output == {"file": str(route), "previous": None, "target": "dc2"}
    back = _run({**params, "kwargs": {"file": str(route), "target": "dc1"}})
    assert back.output["previous"] == "dc2"
    assert route.read_text() == "dc1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["route"]  # no temporary file left


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("os.system", "'os.system' is not allowed: its module is not in settings.DRPLAN_PYTHON_ACTIONS"),
        ("subprocess.run", "'subprocess.run' is not allowed"),
        ("failover.engine.extensions_evil.run", "'failover.engine.extensions_evil.run' is not allowed"),
        ("failover.engine.extensions.nope", "'failover.engine.extensions' has no function 'nope'"),
        ("failover.engine.extensions.os", "'failover.engine.extensions' has no function 'os'"),
        ("failover.engine.extensions._hidden", "'failover.engine.extensions._hidden' is private"),
    ],
)
def test_callables_outside_the_allow_list_are_refused(path: str, message: str) -> None:
    result = _run({"callable": path, "kwargs": {"command": "touch pwned.txt"}})
    assert not result.ok
    assert result.error.startswith(f"python: {message}")
    assert python_callable_problem(path).startswith(message)
    assert python_callable_problem("failover.engine.extensions.echo") is None


def test_results_errors_timeout_and_cancel(settings) -> None:
    settings.DRPLAN_PYTHON_ACTIONS = ["failover.engine.extensions", HERE]
    calls.clear()
    assert _run({"callable": f"{HERE}.boom"}).error == f"python {HERE}.boom: RuntimeError: replica is not in sync"
    measured_result = _run({"callable": f"{HERE}.measured"})
    assert (measured_result.output, measured_result.measurements) == ({"switched": True}, {"rpo_seconds": 4.0})
    assert _run({"callable": f"{HERE}.scalar"}).output == {"result": 7}
    assert _run({"callable": f"{HERE}._private"}).error == f"python: '{HERE}._private' is private"
    assert "private ran" not in calls
    bad_kwargs = _run({"callable": f"{HERE}.scalar", "kwargs": {"unexpected": 1}})
    assert bad_kwargs.error.startswith(f"python {HERE}.scalar: TypeError: ")

    started = time.monotonic()
    result = _run({"callable": f"{HERE}.patient", "kwargs": {"seconds": 5}}, _ctx(timeout=0.2))
    assert time.monotonic() - started < 1.5
    assert result.error == f"python {HERE}.patient: timed out after 0.2s"

    ctx = _ctx(timeout=10)
    threading.Timer(0.2, ctx.cancelled.set).start()
    started = time.monotonic()
    result = _run({"callable": f"{HERE}.patient", "kwargs": {"seconds": 5}}, ctx)
    assert time.monotonic() - started < 1.5
    assert result.error == f"python {HERE}.patient: cancelled"
    deadline = time.monotonic() + 2
    while "patient stopped" not in calls and time.monotonic() < deadline:
        time.sleep(0.02)
    assert "patient stopped" in calls  # the callable saw ctx.cancelled and stopped its own work

    settings.DRPLAN_PYTHON_ACTIONS = []
    assert _run({"callable": "failover.engine.extensions.echo"}).error.startswith(
        "python: 'failover.engine.extensions.echo' is not allowed"
    )
