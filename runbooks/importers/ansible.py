"""Ansible playbooks → one runbook of category `maintenance`, one `ansible.playbook` step per play.

Each step runs its play (kept as written, in YAML) through ansible-runner against the inventory given as
the `ansible_inventory` parameter, and streams every task's result into the step's log; the plays run in
order (each needs the one before). `import_playbook` entries become manual steps (the other file is not
part of the import). A task file (a list of tasks, no `hosts`) becomes one step running those tasks as a
play on all hosts. Files a play includes (vars files, roles) are not imported: the report lists them and the
step runs where they are (`project_dir`).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from runbooks.importers.base import (
    Conversion,
    ImportFailed,
    ImportReport,
    escape_template,
    import_version,
    make_slug,
    require_list,
    require_mapping,
    step_id,
    title,
)

FORMAT = "ansible"
IMPORT_KEYS = ("import_playbook", "ansible.builtin.import_playbook")
PLAY_KEYS = ("hosts",)
INCLUDES = re.compile(r"\b(include_vars|include_role|import_role|include_tasks|import_tasks|roles|vars_files)\b")
INVENTORY = "ansible_inventory"
PROJECT_DIR = "ansible_project_dir"


def looks_like_playbook(parsed: Any) -> bool:
    """A list of plays (hosts / import_playbook) or of tasks (module calls with a name)."""
    if not isinstance(parsed, list) or not parsed or not all(isinstance(p, dict) for p in parsed):
        return False
    if any(any(k in p for k in (*PLAY_KEYS, *IMPORT_KEYS)) for p in parsed):
        return True
    return all("sequence" not in p and "workflow" not in p for p in parsed) and any(
        any("." in k or k in ("shell", "command", "uri", "debug", "block") for k in p) for p in parsed
    )


def _dump(value: Any) -> str:
    return yaml.safe_dump(value, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)


def convert(text: str, parsed: Any) -> Conversion:
    plays = require_list(parsed, "document")
    if not plays:
        raise ImportFailed("document", "the playbook is empty")
    report = ImportReport(FORMAT)
    params: dict[str, Any] = {
        INVENTORY: {
            "type": "string",
            "description": "The inventory the plays run against (INI or YAML text, or a path on the worker).",
        },
        PROJECT_DIR: {
            "type": "string",
            "default": "",
            "description": "Directory holding the files the plays include (vars, roles); empty = none.",
        },
    }
    is_task_file = not any(isinstance(p, dict) and any(k in p for k in (*PLAY_KEYS, *IMPORT_KEYS)) for p in plays)
    if is_task_file:
        for index, task in enumerate(plays):
            require_mapping(task, f"[{index}]")
        plays = [{"name": "Tasks", "hosts": "all", "gather_facts": False, "tasks": plays}]
        report.notes.append("A task file (no hosts): its tasks run as one play on all hosts of the inventory.")
    taken: set[str] = set()
    steps: list[dict[str, Any]] = []
    for index, play in enumerate(plays):
        where = f"[{index}]" if not is_task_file else "tasks"
        play = require_mapping(play, where)
        name = str(play.get("name") or f"play {index + 1}")
        sid = step_id(name, taken, f"play-{index + 1}")
        imported = next((play[k] for k in IMPORT_KEYS if k in play), None)
        if imported is not None:
            step: dict[str, Any] = {
                "id": sid,
                "title": title(f"Run the playbook {imported}", sid),
                "action": "manual",
                "with": {
                    "instructions": escape_template(
                        f"Run the playbook {imported} (not part of this import):\n\n{_dump(play)}"
                    )
                },
            }
            report.manual(where, sid, f"import_playbook {imported}: a manual step (the file is not imported)")
        else:
            if "hosts" not in play:
                raise ImportFailed(f"{where}.hosts", "a play needs hosts")
            if not any(k in play for k in ("tasks", "pre_tasks", "post_tasks", "roles", "handlers")):
                raise ImportFailed(where, "a play needs tasks, pre_tasks, post_tasks or roles")
            for key in ("tasks", "pre_tasks", "post_tasks", "handlers"):
                if key in play:
                    for t_index, task in enumerate(require_list(play[key], f"{where}.{key}")):
                        require_mapping(task, f"{where}.{key}[{t_index}]")
            play_text = _dump([play])
            step = {
                "id": sid,
                "title": title(name, sid),
                "action": "ansible.playbook",
                "with": {
                    "playbook": escape_template(play_text),
                    "inventory": "{{ params." + INVENTORY + " }}",
                    "project_dir": "{{ params." + PROJECT_DIR + " }}",
                },
            }
            tasks = sum(len(play.get(k) or []) for k in ("pre_tasks", "tasks", "post_tasks"))
            report.converted(where, sid, f"play on {play['hosts']} ({tasks} tasks) → ansible.playbook")
            includes = sorted(set(INCLUDES.findall(play_text)))
            if includes:
                report.notes.append(
                    f"{sid}: uses {', '.join(includes)}: the files it includes must be under {PROJECT_DIR}."
                )
        if steps:
            step["needs"] = [steps[-1]["id"]]
        steps.append(step)
    first = plays[0] if isinstance(plays[0], dict) else {}
    name = title(first.get("name"), "Ansible playbook")
    document = {
        "name": name,
        "slug": make_slug("ansible", name),
        "version": import_version(text),
        "category": "maintenance",
        "description": "Imported from an Ansible playbook.",
        "parameters": params,
        "steps": steps,
    }
    return Conversion(document, report)
