"""Rendered parameters reaching the shell action: a value stays one argv element, whatever it contains."""

from __future__ import annotations

from pathlib import Path

from failover.engine.actions import StepContext, run_action
from runbooks.templating import TemplateContext, render_step_params

HOSTILE = "x; touch pwned.txt"


def _context() -> TemplateContext:
    return TemplateContext(params={"target": HOSTILE, "port": 5432}, step_keys=set())


def test_injection_value_stays_one_argv_element_and_creates_no_file(tmp_path: Path) -> None:
    rendered = render_step_params(
        {"argv": ["printf", "%s\\n", "{{ params.target }}"], "cwd": str(tmp_path)}, _context()
    )
    assert rendered.value == {"argv": ["printf", "%s\\n", HOSTILE], "cwd": str(tmp_path)}
    lines: list[str] = []
    result = run_action("shell", rendered.value, StepContext(execution_id=1, step_key="s", log=lines.append))
    assert result.ok, result.error
    assert lines == [HOSTILE]
    assert not (tmp_path / "pwned.txt").exists()
    assert list(tmp_path.iterdir()) == []

    # Also when the value is part of a longer string, or fed to sh -c as an argument (not the script).
    rendered = render_step_params(
        {"argv": ["sh", "-c", 'printf "%s\\n" "$1"', "sh", "--target={{ params.target }}"], "cwd": str(tmp_path)},
        _context(),
    )
    assert rendered.value["argv"][-1] == f"--target={HOSTILE}"
    lines.clear()
    assert run_action("shell", rendered.value, StepContext(execution_id=1, step_key="s", log=lines.append)).ok
    assert lines == [f"--target={HOSTILE}"]
    assert not (tmp_path / "pwned.txt").exists()


def test_a_number_from_a_template_in_argv_reaches_the_command_as_text() -> None:
    argv = render_step_params({"argv": ["echo", "{{ params.port }}"]}, _context()).value["argv"]
    assert argv == ["echo", 5432]
    lines: list[str] = []
    assert run_action("shell", {"argv": argv}, StepContext(execution_id=1, step_key="s", log=lines.append)).ok
    assert lines == ["5432"]
