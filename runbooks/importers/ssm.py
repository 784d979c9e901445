"""AWS Systems Manager Automation documents, schemaVersion 0.3 → one runbook of category `restore`.

Parameters → parameters (String, Integer, Boolean; list and map types as JSON text); the IAM role
(`assumeRole`, `AutomationAssumeRole`) → the secret parameter `aws_credentials` every AWS step uses.
`aws:executeAwsApi` → `aws.call` (service, operation, parameters, outputs by JSON path);
`aws:waitForAwsResourceProperty` → `aws.call` with `wait_for` (polls until the property has a desired
value); `aws:assertAwsResourceProperty` → `aws.call` with `expect`; `aws:sleep` → `wait`; `aws:approve`
→ a step with an approval gate; `aws:branch`, `aws:executeScript` and every other action → manual steps
with the original content, as are the targets of a branch (the person follows the branch). `{{ Param }}`
→ `{{ params.Param }}`, `{{ Step.Output }}` → `{{ steps.Step.output.Output }}` (a step whose inputs need
the output of a manual step becomes manual too). Steps run in document order; `maxAttempts` → retries,
`timeoutSeconds` → timeout, `onFailure: Continue` → continue on failure.
"""

from __future__ import annotations

import json
import re
from typing import Any

from runbooks.importers.base import (
    Conversion,
    ImportFailed,
    ImportReport,
    escape_template,
    import_version,
    make_slug,
    require_list,
    require_mapping,
    title,
)

FORMAT = "ssm"
REFERENCE = re.compile(r"\{\{\s*([A-Za-z0-9_:.-]+)\s*\}\}")
ROLE_PARAMS = ("AutomationAssumeRole",)
CREDENTIALS = "aws_credentials"
CREDENTIALS_REF = "{{ params." + CREDENTIALS + " }}"
TYPES = {"String": "string", "Integer": "integer", "Boolean": "boolean"}
JSON_TYPES = ("StringList", "MapList", "StringMap")
API_KEYS = ("Service", "Api")
STEP_KEYS = {
    "name",
    "action",
    "inputs",
    "outputs",
    "maxAttempts",
    "timeoutSeconds",
    "onFailure",
    "isEnd",
    "nextStep",
    "isCritical",
    "description",
    "onCancel",
}
SIMPLE_SELECTOR = re.compile(r"^\$(\.[A-Za-z_][A-Za-z0-9_-]*|\[\d+\])*$")
DURATION = re.compile(r"^P(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)$")


class _Unresolved(Exception):
    """A reference to something a DRPlan step cannot get (a manual step's output, an automation variable)."""


def convert(text: str, parsed: Any) -> Conversion:
    return _Document(require_mapping(parsed, "document"), text).convert()


class _Document:
    def __init__(self, doc: dict[str, Any], text: str) -> None:
        self.doc = doc
        self.text = text
        self.report = ImportReport(FORMAT)
        self.params: dict[str, Any] = {}
        self.outputs: dict[str, set[str]] = {}  # automated step -> its outputs
        self.names: set[str] = set()

    def convert(self) -> Conversion:
        doc = self.doc
        version = doc.get("schemaVersion")
        if str(version) != "0.3":
            raise ImportFailed(
                "schemaVersion", f"{version!r}: only Automation documents of schemaVersion 0.3 are supported"
            )
        steps_in = require_list(doc.get("mainSteps"), "mainSteps")
        if not steps_in:
            raise ImportFailed("mainSteps", "the document has no steps")
        self._parameters()
        if doc.get("assumeRole"):
            self.report.dropped("assumeRole", f"the IAM role: DRPlan's AWS steps use the secret named by {CREDENTIALS}")
        names: list[str] = []
        for index, step in enumerate(steps_in):
            step = require_mapping(step, f"mainSteps[{index}]")
            name = step.get("name")
            if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name or ""):
                raise ImportFailed(f"mainSteps[{index}].name", f"{name!r} is not a valid step name")
            if name in names:
                raise ImportFailed(f"mainSteps[{index}].name", f"duplicate step name {name!r}")
            names.append(name)
        self.names = set(names)
        branch_targets = self._branch_targets(steps_in)
        steps: list[dict[str, Any]] = []
        for index, step in enumerate(steps_in):
            where = f"mainSteps[{index}] ({step['name']})"
            converted = self._step(step, where, branch_targets.get(step["name"]))
            if steps:
                converted["needs"] = [steps[-1]["id"]]
            steps.append(converted)
        for index, name in enumerate(doc.get("outputs") or []):
            self.report.dropped(
                f"outputs[{index}]", f"document output {name}: read it from the step's output in the execution"
            )
        description = str(doc.get("description") or "AWS SSM Automation document")
        name = title(description.splitlines()[0] if description.strip() else "", "SSM Automation document")
        document = {
            "name": name,
            "slug": make_slug("ssm", name),
            "version": import_version(self.text),
            "category": "restore",
            "description": description + "\n\nImported from an AWS SSM Automation document.",
            "parameters": self.params,
            "steps": steps,
        }
        return Conversion(document, self.report)

    def _parameters(self) -> None:
        self.params[CREDENTIALS] = {
            "type": "string",
            "secret": True,
            "description": "Secret with the AWS credentials and region (JSON: aws_access_key_id, "
            "aws_secret_access_key, region_name, optionally aws_session_token, endpoint_url).",
        }
        for name, spec in require_mapping(self.doc.get("parameters") or {}, "parameters").items():
            where = f"parameters.{name}"
            spec = require_mapping(spec, where)
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ImportFailed(where, f"{name!r} is not a parameter name DRPlan accepts")
            if name in ROLE_PARAMS:
                self.report.dropped(where, f"the IAM role: replaced by the secret parameter {CREDENTIALS}")
                continue
            kind = spec.get("type", "String")
            default = spec.get("default")
            description = str(spec.get("description") or "")
            if kind in TYPES:
                ptype = TYPES[kind]
                if ptype == "integer" and isinstance(default, str) and default.isdigit():
                    default = int(default)
                if ptype == "boolean" and isinstance(default, str):
                    default = default.lower() == "true"
                if ptype == "string" and default is not None and not isinstance(default, str):
                    default = str(default)
                detail = f"→ parameter ({ptype})"
            elif kind in JSON_TYPES:
                ptype = "string"
                default = json.dumps(default) if default is not None else None
                description += f" ({kind} as JSON text.)"
                detail = f"{kind} → parameter (string holding JSON)"
            else:
                raise ImportFailed(f"{where}.type", f"parameter type {kind!r} is not supported")
            if isinstance(default, str) and REFERENCE.search(default):
                default = None
                detail += "; its default referred to other values and was dropped"
            self.params[name] = {"type": ptype, "default": default, "description": description}
            self.report.converted(where, None, detail)

    def _branch_targets(self, steps: list[dict[str, Any]]) -> dict[str, str]:
        targets: dict[str, str] = {}
        for step in steps:
            if step.get("action", "").strip("'\"") == "aws:branch":
                inputs = step.get("inputs") or {}
                for choice in inputs.get("Choices") or []:
                    if isinstance(choice, dict) and choice.get("NextStep"):
                        targets.setdefault(choice["NextStep"], step["name"])
                if inputs.get("Default"):
                    targets.setdefault(inputs["Default"], step["name"])
        return targets

    # --- references -----------------------------------------------------------------------------------

    def _ref(self, name: str, where: str, *, text: bool) -> str:
        if name in self.params and name != CREDENTIALS:
            return "{{ params." + name + " }}"
        if name in ROLE_PARAMS:
            raise _Unresolved(f"{{{{ {name} }}}} (the IAM role)")
        if ":" in name:
            raise _Unresolved(f"{{{{ {name} }}}} (an Automation variable)")
        step, _, output = name.partition(".")
        if step in self.names and output:
            if output in self.outputs.get(step, set()):
                return "{{ steps." + step + ".output." + output + " }}"
            if text:
                return f"(the output {output} of step {step})"
            raise _Unresolved(f"{{{{ {name} }}}} (the output of step {step}, which is manual or later)")
        raise ImportFailed(where, f"{{{{ {name} }}}} is neither a parameter nor a step output")

    def _substitute(self, value: Any, where: str, *, text: bool = False) -> Any:
        if isinstance(value, str):
            parts, last = [], 0
            for match in REFERENCE.finditer(value):
                parts.append(escape_template(value[last : match.start()]))
                try:
                    parts.append(self._ref(match.group(1), where, text=text))
                except _Unresolved:
                    if not text:
                        raise
                    parts.append(escape_template(match.group(0)))
                last = match.end()
            parts.append(escape_template(value[last:]))
            return "".join(parts)
        if isinstance(value, dict):
            return {k: self._substitute(v, f"{where}.{k}", text=text) for k, v in value.items()}
        if isinstance(value, list):
            return [self._substitute(v, f"{where}[{i}]", text=text) for i, v in enumerate(value)]
        return value

    # --- steps ----------------------------------------------------------------------------------------

    def _step(self, step: dict[str, Any], where: str, branch: str | None) -> dict[str, Any]:
        name = step["name"]
        action = str(step.get("action") or "").strip()
        inputs = require_mapping(step.get("inputs") or {}, f"{where}.inputs")
        out: dict[str, Any] = {"id": name, "title": title(step.get("description") or name, name)}
        self._common(step, where, out)
        if branch is not None and action != "aws:branch":
            return self._manual(
                step, where, out, f"the target of branch {branch}: do it only if the branch chose this step"
            )
        try:
            if action == "aws:executeAwsApi":
                params = self._api(step, inputs, where)
                self.outputs[name] = {o["name"] for o in params.get("outputs", [])}
                detail = f"aws:executeAwsApi → aws.call {params['service']} {params['operation']}"
            elif action in ("aws:waitForAwsResourceProperty", "aws:assertAwsResourceProperty"):
                params = self._api(step, inputs, where, property_check=True)
                key = "wait_for" if action == "aws:waitForAwsResourceProperty" else "expect"
                selector = inputs.get("PropertySelector")
                values = inputs.get("DesiredValues")
                if not isinstance(selector, str) or not isinstance(values, list) or not values:
                    raise ImportFailed(f"{where}.inputs", "PropertySelector and DesiredValues (a list) are required")
                if not SIMPLE_SELECTOR.match(selector):
                    raise _Unresolved(f"the JSON path {selector} (only $.key and [n] parts are supported)")
                params[key] = {
                    "selector": self._substitute(selector, f"{where}.inputs.PropertySelector"),
                    "values": [self._substitute(str(v), f"{where}.inputs.DesiredValues") for v in values],
                }
                verb = "waits until" if key == "wait_for" else "checks that"
                detail = (
                    f"{action} → aws.call {params['service']} {params['operation']} that {verb} {selector} "
                    f"is one of {values}"
                )
            elif action == "aws:sleep":
                out.update(action="wait", **{"with": {"seconds": self._sleep(inputs, where)}})
                self.report.converted(where, name, f"aws:sleep → wait {out['with']['seconds']}s")
                return out
            elif action == "aws:approve":
                return self._approve(step, inputs, where, out)
            else:
                why = {
                    "aws:branch": "a branch: DRPlan steps do not choose their successor; follow it by hand",
                    "aws:executeScript": "a script (DRPlan does not run Automation scripts)",
                }.get(action, f"{action} has no DRPlan action")
                return self._manual(step, where, out, why)
        except _Unresolved as exc:
            return self._manual(step, where, out, f"it needs {exc}, which no DRPlan step provides")
        out.update(action="aws.call", **{"with": params})
        self.report.converted(where, name, detail)
        return out

    def _common(self, step: dict[str, Any], where: str, out: dict[str, Any]) -> None:
        attempts = step.get("maxAttempts")
        if isinstance(attempts, int) and attempts > 1:
            out["retries"] = min(attempts - 1, 100)
        seconds = step.get("timeoutSeconds")
        if isinstance(seconds, int) and not isinstance(seconds, bool) and seconds > 0:
            out["timeout"] = min(seconds, 30 * 24 * 3600)
        failure = str(step.get("onFailure") or "Abort")
        if failure == "Continue":
            out["continue_on_failure"] = True
        elif failure != "Abort":
            self.report.dropped(
                f"{where}.onFailure", f"onFailure {failure}: the run stops at a failure (and rolls back)"
            )
        if step.get("nextStep") or step.get("isEnd"):
            self.report.dropped(
                f"{where}.nextStep", "flow control (nextStep/isEnd): steps run in document order; branches are manual"
            )
        unknown = sorted(set(step) - STEP_KEYS)
        if unknown:
            self.report.dropped(f"{where}", f"step fields not carried over: {', '.join(unknown)}")

    def _api(
        self, step: dict[str, Any], inputs: dict[str, Any], where: str, *, property_check: bool = False
    ) -> dict[str, Any]:
        service, api = inputs.get("Service"), inputs.get("Api")
        if not isinstance(service, str) or not re.fullmatch(r"[a-z0-9][a-z0-9-]*", service):
            raise ImportFailed(f"{where}.inputs.Service", f"{service!r} is not an AWS service name (e.g. rds)")
        if not isinstance(api, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*", api):
            raise ImportFailed(f"{where}.inputs.Api", f"{api!r} is not an API operation name (e.g. DescribeDBClusters)")
        api = api[0].upper() + api[1:]  # SSM also takes describeFileSystems
        skip = {*API_KEYS, "PropertySelector", "DesiredValues"} if property_check else set(API_KEYS)
        parameters = {k: self._substitute(v, f"{where}.inputs.{k}") for k, v in inputs.items() if k not in skip}
        params: dict[str, Any] = {
            "credentials_secret": CREDENTIALS_REF,
            "service": service,
            "operation": api,
            "parameters": parameters,
        }
        outputs = []
        for index, output in enumerate(require_list(step.get("outputs") or [], f"{where}.outputs")):
            output = require_mapping(output, f"{where}.outputs[{index}]")
            oname, selector = output.get("Name"), output.get("Selector")
            if not isinstance(oname, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", oname):
                raise ImportFailed(f"{where}.outputs[{index}].Name", f"{oname!r} is not an output name")
            if not isinstance(selector, str) or not selector.startswith("$"):
                raise ImportFailed(f"{where}.outputs[{index}].Selector", f"{selector!r} is not a JSON path ($.…)")
            if not SIMPLE_SELECTOR.match(selector):
                raise _Unresolved(f"the JSON path {selector} (only $.key and [n] parts are supported)")
            outputs.append({"name": oname, "selector": selector, "type": str(output.get("Type") or "String")})
        if outputs:
            params["outputs"] = outputs
        return params

    def _sleep(self, inputs: dict[str, Any], where: str) -> int:
        duration = inputs.get("Duration")
        match = DURATION.match(str(duration or ""))
        if not match or not any(match.groups()):
            raise ImportFailed(f"{where}.inputs.Duration", f"{duration!r} is not an ISO 8601 duration (PT5M)")
        hours, minutes, seconds = (int(g or 0) for g in match.groups())
        return min(hours * 3600 + minutes * 60 + seconds, 86400)

    def _approve(self, step: dict[str, Any], inputs: dict[str, Any], where: str, out: dict[str, Any]) -> dict[str, Any]:
        needed = inputs.get("MinRequiredApprovals", 1)
        needed = needed if isinstance(needed, int) and 1 <= needed <= 100 else 1
        message = self._substitute(
            str(inputs.get("Message") or "Approve to continue."), f"{where}.inputs.Message", text=True
        )
        out.update(
            action="noop",
            **{"with": {"message": message}},
            approval={"role": "approver", "approvers": needed},
        )
        self.report.converted(
            where, step["name"], f"aws:approve → an approval gate: {needed} approver(s) holding the role approver"
        )
        if inputs.get("Approvers") or inputs.get("NotificationArn"):
            self.report.dropped(
                f"{where}.inputs", "Approvers (IAM principals) and NotificationArn: DRPlan approvers are its users"
            )
        return out

    def _manual(self, step: dict[str, Any], where: str, out: dict[str, Any], why: str) -> dict[str, Any]:
        original = self._substitute(
            json.dumps({k: v for k, v in step.items()}, indent=2, ensure_ascii=False), where, text=True
        )
        instructions = f"Do this SSM Automation step by hand ({escape_template(why)}):\n\n{original}"
        out.update(action="manual", **{"with": {"instructions": instructions}})
        out.pop("retries", None)
        self.report.manual(where, step["name"], f"{step.get('action')}: {why}; a manual step with the original content")
        return out
