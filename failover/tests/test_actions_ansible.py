"""`ansible.playbook`: a real ansible-playbook run (ansible-runner, ansible-core) against this machine through
a local connection; every task's result on every host in the step's log, the outcome and the stats."""

from __future__ import annotations

import sys
from pathlib import Path

from failover.engine.actions import StepContext, run_action
from runbooks.actions import get_action

INVENTORY = f"localhost ansible_connection=local ansible_python_interpreter={sys.executable}"


def ctx(timeout: float = 300) -> tuple[StepContext, list[str]]:
    lines: list[str] = []
    return StepContext(execution_id=1, step_key="play", timeout=timeout, log=lines.append), lines


def playbook(tasks: str) -> str:
    return "- name: Switch over\n  hosts: all\n  gather_facts: false\n  tasks:\n" + tasks


def test_a_playbook_runs_and_each_task_is_logged(tmp_path: Path) -> None:
    marker = tmp_path / "switched"
    params = {
        "playbook": playbook(
            "    - name: write the marker\n"
            '      ansible.builtin.copy: {content: "{{ who }}\\n", dest: "{{ marker }}"}\n'
            "    - name: say hello\n"
            "      ansible.builtin.command: echo hello\n"
        ),
        "inventory": INVENTORY,
        "extra_vars": {"marker": str(marker), "who": "drplan"},
    }
    assert list(get_action("ansible.playbook").validator.iter_errors(params)) == []
    context, lines = ctx()
    result = run_action("ansible.playbook", params, context)
    assert result.ok, (result.error, lines)
    assert marker.read_text() == "drplan\n"
    assert "PLAY Switch over" in lines
    assert "localhost: write the marker: ok (changed)" in lines
    assert "localhost: say hello: ok (changed)" in lines
    assert result.output["status"] == "successful" and result.output["rc"] == 0
    assert result.output["stats"]["ok"] == {"localhost": 2}


def test_a_failing_task_fails_the_step_naming_the_host(tmp_path: Path) -> None:
    params = {
        "playbook": playbook("    - name: check the replica\n      ansible.builtin.command: /bin/false\n"),
        "inventory": INVENTORY,
    }
    context, lines = ctx()
    result = run_action("ansible.playbook", params, context)
    assert not result.ok
    assert result.error == "ansible.playbook: failed, return code 2 (failed or unreachable: localhost)"
    assert any(line.startswith("localhost: check the replica: FAILED") for line in lines)


def test_a_playbook_that_outlives_the_step_timeout_is_stopped() -> None:
    params = {
        "playbook": playbook("    - name: hang\n      ansible.builtin.command: sleep 60\n"),
        "inventory": INVENTORY,
    }
    context, _ = ctx(timeout=3)
    result = run_action("ansible.playbook", params, context)
    assert not result.ok
    assert result.error.startswith("ansible.playbook: timed out after 3s")
