"""Azure Site Recovery recovery plans (the `ReplicationRecoveryPlans_Get` JSON: the REST example with
`responses.200.body`, or the body itself) → one runbook of category `failover`.

Groups → tiers, in order: every step of a group needs every step of the group before it. Each replicated
(protected) item → a manual step "fail over <VM>" (DRPlan has no Azure action: the person fails the item over
in the vault) and an application, matched by name or slug, else created (tier = the group's boot order,
1-3). Start and end group actions → steps before and after the group's items: a manual action → a manual
step with its instructions, a script action → a manual step naming the script and where ASR ran it, an
Automation runbook action → a manual step naming the runbook. A `ReplicationJobs_Get` job record imports as
its tasks, one manual step each (the job's times and state are history, not a procedure).
"""

from __future__ import annotations

import re
from typing import Any

from django.utils.text import slugify

from runbooks.importers.base import (
    Conversion,
    ImportFailed,
    ImportReport,
    escape_template,
    import_version,
    make_slug,
    original_text,
    require_list,
    require_mapping,
    step_id,
    title,
)

FORMAT = "asr"


def _body(doc: dict[str, Any]) -> tuple[dict[str, Any], str]:
    if "responses" in doc:
        responses = require_mapping(doc["responses"], "responses")
        ok = require_mapping(responses.get("200") or responses.get(200), "responses.200")
        return require_mapping(ok.get("body"), "responses.200.body"), "responses.200.body"
    return doc, ""


def convert(text: str, parsed: Any) -> Conversion:
    doc = require_mapping(parsed, "document")
    body, prefix = _body(doc)
    properties = require_mapping(body.get("properties"), f"{prefix}.properties".lstrip("."))
    if "tasks" in properties and "groups" not in properties:
        return _job(text, body, properties, prefix)
    return _Plan(text, body, properties, prefix).convert()


def _vm_name(item: dict[str, Any]) -> str:
    for key in ("friendlyName", "name"):
        value = item.get(key) or (item.get("properties") or {}).get(key)
        if value:
            return str(value)
    ident = str(item.get("id") or item.get("virtualMachineId") or "")
    return ident.rstrip("/").rsplit("/", 1)[-1] or "vm"


class _Plan:
    def __init__(self, text: str, body: dict[str, Any], properties: dict[str, Any], prefix: str) -> None:
        self.text, self.body, self.properties = text, body, properties
        self.where = f"{prefix}.properties".lstrip(".")
        self.report = ImportReport(FORMAT)
        self.taken: set[str] = set()
        self.steps: list[dict[str, Any]] = []
        self.applications: list[dict[str, Any]] = []

    def convert(self) -> Conversion:
        groups = require_list(self.properties.get("groups"), f"{self.where}.groups")
        if not groups:
            raise ImportFailed(f"{self.where}.groups", "the recovery plan has no groups")
        name = title(self.properties.get("friendlyName") or self.body.get("name"), "Recovery plan")
        previous: list[str] = []
        boot = 0
        for index, group in enumerate(groups):
            where = f"{self.where}.groups[{index}]"
            group = require_mapping(group, where)
            kind = str(group.get("groupType") or "Boot")
            if kind == "Boot":
                boot += 1
            label = f"{kind} group {boot}" if kind == "Boot" else f"{kind} group"
            current = self._group(group, where, label, previous, tier=min(max(boot, 1), 3))
            if current:
                previous = current
            else:
                self.report.converted(where, None, f"{label}: empty (no items, no actions)")
        if not self.steps:
            raise ImportFailed(f"{self.where}.groups", "no group has a replicated item or an action")
        for key in ("allowedOperations", "replicationProviders", "failoverDeploymentModel"):
            if self.properties.get(key):
                self.report.dropped(f"{self.where}.{key}", f"{key} {self.properties[key]}: Azure metadata")
        source = self.properties.get("primaryFabricFriendlyName") or "the primary fabric"
        target = self.properties.get("recoveryFabricFriendlyName") or "the recovery fabric"
        document = {
            "name": name,
            "slug": make_slug("asr", name),
            "version": import_version(self.text),
            "category": "failover",
            "description": (
                f"Azure Site Recovery recovery plan {name}: from {source} to {target}. Imported from "
                "ReplicationRecoveryPlans_Get."
            ),
            "steps": self.steps,
        }
        return Conversion(document, self.report, self.applications)

    def _add(self, step: dict[str, Any], needs: list[str]) -> str:
        if needs:
            step["needs"] = list(needs)
        self.steps.append(step)
        return step["id"]

    def _group(self, group: dict[str, Any], where: str, label: str, previous: list[str], tier: int) -> list[str]:
        starts = require_list(group.get("startGroupActions") or [], f"{where}.startGroupActions")
        ends = require_list(group.get("endGroupActions") or [], f"{where}.endGroupActions")
        items = require_list(group.get("replicationProtectedItems") or [], f"{where}.replicationProtectedItems")
        needs = previous
        for index, action in enumerate(starts):
            needs = [self._action(action, f"{where}.startGroupActions[{index}]", f"{label}: before", needs)]
        item_steps = []
        for index, item in enumerate(items):
            item_where = f"{where}.replicationProtectedItems[{index}]"
            item = require_mapping(item, item_where)
            vm = _vm_name(item)
            app_name = vm
            slug = slugify(app_name)[:100] or "vm"
            if slug.isdigit():
                slug = f"vm-{slug}"
            self.applications.append({"slug": slug, "name": app_name, "tier": tier, "source": item_where})
            sid = step_id(f"failover-{vm}", self.taken)
            instructions = escape_template(
                f"{label}: fail over the replicated item {vm} in the Recovery Services vault (Azure portal: "
                f"Site Recovery → Replicated items → {vm} → Failover), then confirm it booted."
                f"\n\nItem: {item.get('id', vm)}"
            )
            step = {
                "id": sid,
                "title": title(f"{label}: fail over {vm}", sid),
                "action": "manual",
                "with": {"instructions": instructions},
                "responsible_role": "operator",
            }
            item_steps.append(self._add(step, needs))
            self.report.manual(
                item_where, sid, f"replicated item {vm} → application {slug!r} (tier {tier}) and a manual failover step"
            )
        if item_steps:
            needs = item_steps
        for index, action in enumerate(ends):
            needs = [self._action(action, f"{where}.endGroupActions[{index}]", f"{label}: after", needs)]
        return needs if needs is not previous else []

    def _action(self, action: Any, where: str, label: str, needs: list[str]) -> str:
        action = require_mapping(action, where)
        name = str(action.get("actionName") or "action")
        details = require_mapping(action.get("customDetails") or {}, f"{where}.customDetails")
        kind = details.get("instanceType")
        sid = step_id(name, self.taken)
        if kind == "ManualActionDetails":
            text = f"{label}: {name}\n\n{details.get('description') or name}"
            detail = "manual action → a manual step with its instructions"
        elif kind == "ScriptActionDetails":
            text = (
                f"{label}: run the script {details.get('path')} on the {details.get('fabricLocation', 'Primary')} "
                f"side (ASR ran it on the VMM server).\n\n{details.get('timeout', '')}"
            )
            detail = f"script action {details.get('path')} → a manual step (the script lives on the VMM server)"
        elif kind == "AutomationRunbookActionDetails":
            text = f"{label}: run the Azure Automation runbook {details.get('runbookId')}"
            detail = "Automation runbook action → a manual step naming the runbook"
        else:
            raise ImportFailed(f"{where}.customDetails.instanceType", f"{kind!r} is not a recovery plan action type")
        step = {
            "id": sid,
            "title": title(f"{label}: {name}", sid),
            "action": "manual",
            "with": {"instructions": escape_template(text) + "\n\n" + original_text(action)},
        }
        self.report.manual(where, sid, detail)
        return self._add(step, needs)


def _job(text: str, body: dict[str, Any], properties: dict[str, Any], prefix: str) -> Conversion:
    where = f"{prefix}.properties".lstrip(".")
    report = ImportReport(FORMAT)
    report.notes.append(
        "A Site Recovery job record (ReplicationJobs_Get), not a recovery plan: its tasks are imported as "
        "manual steps; "
        + ", ".join(f"{k} {properties[k]}" for k in ("startTime", "endTime", "state") if properties.get(k))
        + " dropped (history)."
    )
    name = title(properties.get("friendlyName") or body.get("name"), "Site Recovery job")
    taken: set[str] = set()
    steps: list[dict[str, Any]] = []
    for index, task in enumerate(require_list(properties.get("tasks"), f"{where}.tasks")):
        task_where = f"{where}.tasks[{index}]"
        task = require_mapping(task, task_where)
        label = str(task.get("friendlyName") or task.get("name") or f"task {index + 1}")
        sid = step_id(label, taken)
        step: dict[str, Any] = {
            "id": sid,
            "title": title(label, sid),
            "action": "manual",
            "with": {
                "instructions": escape_template(
                    f"{label} ({task.get('name', '')}) for {properties.get('targetObjectName', '')}"
                )
            },
        }
        if steps:
            step["needs"] = [steps[-1]["id"]]
        steps.append(step)
        report.manual(task_where, sid, f"task {label} → a manual step")
    if not steps:
        raise ImportFailed(f"{where}.tasks", "the job has no tasks")
    document = {
        "name": name,
        "slug": make_slug("asr", re.sub(r"\s+", " ", name)),
        "version": import_version(text),
        "category": "maintenance",
        "description": (f"Imported from the Site Recovery job {body.get('name', '')}."),
        "steps": steps,
    }
    return Conversion(document, report)
