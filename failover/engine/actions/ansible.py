"""`ansible.playbook`: run a playbook through ansible-runner (ansible-core's `ansible-playbook` in a child
process) against an inventory, writing each task's result on each host to the step's log as it arrives.

    action: ansible.playbook
    with:
      playbook: |
        - hosts: db
          tasks:
            - ansible.builtin.command: patronictl switchover --force
      inventory: "{{ params.ansible_inventory }}"

The playbook is written to a private directory (removed afterwards); `project_dir`, if given, is where it
runs, so that relative vars files and roles resolve. The step's timeout and a cancel stop ansible-runner,
which ends the ansible-playbook process. The step succeeds if the playbook does; the output has the status,
the return code and the per-host counts (ok, changed, failed, unreachable, skipped).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from failover.engine.actions import ActionResult, StepContext, executor
from failover.engine.actions.blocking import step_timeout

DEFAULT_TIMEOUT = 3600.0
RESULT_EVENTS = {
    "runner_on_ok": "ok",
    "runner_on_failed": "FAILED",
    "runner_on_unreachable": "UNREACHABLE",
    "runner_on_skipped": "skipped",
    "runner_item_on_failed": "FAILED (item)",
}
MAX_LINE = 400


def _path() -> str:
    """PATH with the directory of this Python's scripts first (ansible-playbook installed beside it)."""
    return os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])


def _line(event: dict[str, Any]) -> str | None:
    kind = RESULT_EVENTS.get(event.get("event", ""))
    if kind is None:
        if event.get("event") == "playbook_on_play_start":
            return f"PLAY {event.get('event_data', {}).get('play', '')}"
        return None
    data = event.get("event_data") or {}
    result = data.get("res") or {}
    detail = result.get("msg") or result.get("stderr") or result.get("stdout") or ""
    changed = " (changed)" if result.get("changed") else ""
    text = f"{data.get('host', '?')}: {data.get('task', '')}: {kind}{changed}"
    if detail and kind != "ok":
        text += f": {str(detail).strip()}"
    return text[:MAX_LINE]


@executor("ansible.playbook")
def run_playbook(params: dict[str, Any], ctx: StepContext) -> ActionResult:
    import ansible_runner

    playbook = str(params.get("playbook") or "")
    inventory = str(params.get("inventory") or "")
    if not playbook.strip() or not inventory.strip():
        return ActionResult(False, error="ansible.playbook: playbook and inventory must not be empty")
    project = str(params.get("project_dir") or "").strip()
    if project and not Path(project).is_dir():
        return ActionResult(False, error=f"ansible.playbook: project_dir {project} is not a directory")
    timeout = step_timeout(ctx, DEFAULT_TIMEOUT)
    private = tempfile.mkdtemp(prefix="drplan-ansible-")
    try:
        run_dir = Path(project) if project else Path(private) / "project"
        run_dir.mkdir(exist_ok=True)
        handle, name = tempfile.mkstemp(prefix="drplan-playbook-", suffix=".yml", dir=run_dir)
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(playbook)
        inventory_arg = inventory
        if "\n" not in inventory and not Path(inventory).exists():
            inventory_arg = inventory + "\n"  # one host line, as INI text

        def on_event(event: dict[str, Any]) -> bool:
            line = _line(event)
            if line:
                ctx.log(line)
            return True

        try:
            runner = ansible_runner.run(
                private_data_dir=private,
                project_dir=str(run_dir),
                playbook=name,
                inventory=inventory_arg,
                extravars=dict(params.get("extra_vars") or {}),
                limit=str(params.get("limit") or "") or None,
                quiet=True,
                timeout=int(max(1, timeout)),
                event_handler=on_event,
                cancel_callback=ctx.cancelled.is_set,
                envvars={"ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOST_KEY_CHECKING": "True", "PATH": _path()},
            )
        finally:
            if project:
                Path(name).unlink(missing_ok=True)
        stats = runner.stats or {}
        output = {"status": runner.status, "rc": runner.rc, "stats": {k: v for k, v in stats.items() if v}}
        if runner.status == "successful" and runner.rc == 0:
            return ActionResult(True, output=output)
        why = {"timeout": f"timed out after {timeout:g}s", "canceled": "cancelled"}.get(runner.status, runner.status)
        failed = sorted(set(stats.get("failures") or {}) | set(stats.get("dark") or {}))
        hosts = f" (failed or unreachable: {', '.join(failed)})" if failed else ""
        return ActionResult(False, output=output, error=f"ansible.playbook: {why}, return code {runner.rc}{hosts}")
    finally:
        shutil.rmtree(private, ignore_errors=True)
