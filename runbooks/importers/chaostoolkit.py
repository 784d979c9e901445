"""Chaos Toolkit experiments (JSON or YAML, experiment API 1.0) → one runbook of category `test`.

configuration → parameters (`{type: env, key, default}` → a parameter with that default; literals → the
default); secrets → secret references (`${NAME}` → `{{ secrets.NAME }}`: define each secret in DRPlan);
the steady-state hypothesis → validation steps before the method and again after it; method actions and
probes with a `process` provider → `shell` steps (argv: path + arguments, never a shell), `http` → `http`
steps, `python` → manual steps carrying the call (DRPlan does not import experiment code); `pauses` → `wait`
steps; `background` activities run alongside (nothing waits for them); rollbacks → rollback actions,
each carried by a marker step at the start of the method, so that when the method fails the engine undoes
them in the experiment's order. Any other provider type is refused.
"""

from __future__ import annotations

import re
import shlex
from typing import Any

from runbooks.importers.base import (
    Conversion,
    ImportFailed,
    ImportReport,
    command_argv,
    escape_template,
    import_version,
    make_slug,
    original_text,
    require_list,
    require_mapping,
    step_id,
    title,
)

FORMAT = "chaostoolkit"
VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")
PROVIDERS = ("process", "http", "python")
PARAM_NAME = re.compile(r"[^A-Za-z0-9_]")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def convert(text: str, parsed: Any) -> Conversion:
    return _Experiment(require_mapping(parsed, "document"), text).convert()


class _Experiment:
    def __init__(self, doc: dict[str, Any], text: str) -> None:
        self.doc = doc
        self.text = text
        self.report = ImportReport(FORMAT)
        self.params: dict[str, Any] = {}
        self.variables: dict[str, str] = {}  # ${name} -> template
        self.taken: set[str] = set()
        self.steps: list[dict[str, Any]] = []
        self.activities: dict[str, tuple[dict[str, Any], str]] = {}  # name -> (activity, where) for `ref`

    def convert(self) -> Conversion:
        doc = self.doc
        if "method" not in doc:
            raise ImportFailed("method", "a Chaos Toolkit experiment needs a method")
        name = title(doc.get("title"), "Chaos experiment")
        self._configuration()
        self._secrets()
        hypothesis = doc.get("steady-state-hypothesis")
        probes: list[Any] = []
        if hypothesis:
            hypothesis = require_mapping(hypothesis, "steady-state-hypothesis")
            probes = require_list(hypothesis.get("probes", []), "steady-state-hypothesis.probes")
        last: str | None = None
        for index, probe in enumerate(probes):
            last = self._activity(probe, f"steady-state-hypothesis.probes[{index}]", last, "before", hypothesis=True)
        last = self._rollback_markers(last)
        method = require_list(doc["method"], "method")
        if not method:
            raise ImportFailed("method", "the method has no activity")
        for index, activity in enumerate(method):
            last = self._activity(activity, f"method[{index}]", last, "")
        for index, probe in enumerate(probes):
            last = self._activity(probe, f"steady-state-hypothesis.probes[{index}]", last, "after", hypothesis=True)
        for key in ("contributions", "tags", "controls", "extensions", "runtime"):
            if doc.get(key):
                self.report.dropped(key, f"{key} is Chaos Toolkit metadata or run-time control, not a step")
        document = {
            "name": name,
            "slug": make_slug("chaos", name),
            "version": import_version(self.text),
            "category": "test",
            "description": str(doc.get("description") or "") + "\n\nImported from a Chaos Toolkit experiment.",
            "parameters": self.params,
            "steps": self.steps,
        }
        return Conversion(document, self.report)

    # --- configuration and secrets ---------------------------------------------------------------------

    def _configuration(self) -> None:
        for key, value in require_mapping(self.doc.get("configuration") or {}, "configuration").items():
            where = f"configuration.{key}"
            pname = PARAM_NAME.sub("_", key)
            if pname[:1].isdigit():
                pname = f"config_{pname}"
            if isinstance(value, dict):
                kind = value.get("type")
                if kind != "env":
                    raise ImportFailed(
                        f"{where}.type", f"configuration type {kind!r} is not supported (use env or a value)"
                    )
                default = value.get("default")
                description = f"Chaos Toolkit took it from the environment variable {value.get('key')}."
            else:
                default, description = value, "A Chaos Toolkit configuration value."
            kind = "string"
            if isinstance(default, bool):
                kind = "boolean"
            elif isinstance(default, int):
                kind = "integer"
            elif isinstance(default, float):
                kind = "number"
            elif default is not None and not isinstance(default, str):
                raise ImportFailed(where, "a configuration value must be a string, number or boolean")
            self.params[pname] = {"type": kind, "default": default, "description": description}
            self.variables[key] = "{{ params." + pname + " }}"
            self.report.converted(where, None, f"→ parameter {pname!r}")

    def _secrets(self) -> None:
        for scope, values in require_mapping(self.doc.get("secrets") or {}, "secrets").items():
            for key, value in require_mapping(values, f"secrets.{scope}").items():
                where = f"secrets.{scope}.{key}"
                name = re.sub(r"[^A-Za-z0-9_]", "_", key)
                if name[:1].isdigit():
                    name = f"s_{name}"
                self.variables[key] = "{{ secrets." + name + " }}"
                origin = (
                    f" (was the environment variable {value.get('key')})"
                    if isinstance(value, dict) and value.get("type") == "env"
                    else f" (was {value.get('type')})"
                    if isinstance(value, dict)
                    else " (its value is not imported)"
                )
                self.report.converted(
                    where, None, f"→ secret reference {{{{ secrets.{name} }}}}: define secret {name!r}{origin}"
                )

    def _substitute(self, value: Any, where: str) -> Any:
        """${name} → the parameter or secret template; other text escaped. Unknown names → ImportFailed."""
        if isinstance(value, str):
            parts: list[str] = []
            last = 0
            for match in VARIABLE.finditer(value):
                parts.append(escape_template(value[last : match.start()]))
                parts.append(self._variable(match, where))
                last = match.end()
            parts.append(escape_template(value[last:]))
            return "".join(parts)
        if isinstance(value, dict):
            return {k: self._substitute(v, f"{where}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self._substitute(v, f"{where}[{i}]") for i, v in enumerate(value)]
        return value

    def _variable(self, match: re.Match[str], where: str) -> str:
        name = match.group(1)
        if name not in self.variables:
            known = ", ".join(sorted(self.variables)) or "none"
            raise ImportFailed(where, f"${{{name}}} is neither in configuration nor in secrets (known: {known})")
        return self.variables[name]

    # --- activities -----------------------------------------------------------------------------------

    def _activity(
        self, activity: Any, where: str, last: str | None, phase: str, *, hypothesis: bool = False
    ) -> str | None:
        activity = require_mapping(activity, where)
        if "ref" in activity and "provider" not in activity:
            found = self.activities.get(str(activity["ref"]))
            if found is None:
                raise ImportFailed(f"{where}.ref", f"no earlier activity named {activity['ref']!r}")
            activity = found[0]
        name = str(activity.get("name") or "")
        if not name:
            raise ImportFailed(f"{where}.name", "an activity needs a name")
        if not hypothesis or phase == "before":
            self.activities[name] = (activity, where)
        kind = activity.get("type", "action")
        if kind not in ("action", "probe"):
            raise ImportFailed(f"{where}.type", f"{kind!r} is not an activity type (action or probe)")
        pauses = activity.get("pauses") or {}
        if not isinstance(pauses, dict):
            raise ImportFailed(f"{where}.pauses", "must be a mapping with before and/or after")
        if pauses.get("before"):
            last = self._wait(pauses["before"], f"{where}.pauses.before", f"pause before {name}", last)
        label = f"{phase}-{name}" if phase else name
        sid = step_id(label, self.taken)
        action, params, timeout, outcome, detail = self._provider(activity, where, hypothesis)
        step_title = title(
            ("Steady state before: " if phase == "before" else "Steady state after: " if phase == "after" else "")
            + name,
            sid,
        )
        step: dict[str, Any] = {"id": sid, "title": step_title, "action": action, "with": params}
        if timeout:
            step["timeout"] = timeout
        if last:
            step["needs"] = [last]
        if kind == "probe" or hypothesis:
            step["idempotent"] = True
        self.steps.append(step)
        (self.report.manual if outcome == "manual" else self.report.converted)(where, sid, detail)
        if activity.get("background"):
            self.report.converted(
                f"{where}.background", sid, "runs in the background: the next step does not wait for it"
            )
            nxt = last
        else:
            nxt = sid
        if pauses.get("after"):
            nxt = self._wait(pauses["after"], f"{where}.pauses.after", f"pause after {name}", nxt)
        return nxt

    def _wait(self, seconds: Any, where: str, label: str, last: str | None) -> str:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise ImportFailed(where, f"{seconds!r} is not a number of seconds")
        sid = step_id(label, self.taken)
        step: dict[str, Any] = {
            "id": sid,
            "title": title(label, sid),
            "action": "wait",
            "with": {"seconds": round(seconds)},
        }
        if last:
            step["needs"] = [last]
        self.steps.append(step)
        self.report.converted(where, sid, f"→ wait {round(seconds)}s")
        return sid

    def _provider(
        self, activity: dict[str, Any], where: str, hypothesis: bool
    ) -> tuple[str, dict[str, Any], int | None, str, str]:
        """(action, with, timeout, "converted"/"manual", what it became)."""
        provider = require_mapping(activity.get("provider"), f"{where}.provider")
        kind = provider.get("type")
        if kind not in PROVIDERS:
            raise ImportFailed(
                f"{where}.provider.type", f"provider type {kind!r} is not supported (supported: {', '.join(PROVIDERS)})"
            )
        tolerance = activity.get("tolerance")
        timeout = _timeout(provider.get("timeout"), f"{where}.provider.timeout")
        if kind == "python":
            call = f"{provider.get('module')}.{provider.get('func')}"
            text = self._substitute(original_text(provider.get("arguments") or {}), f"{where}.provider.arguments")
            check = (
                f"\n\nExpected result (tolerance): {escape_template(str(tolerance))}" if tolerance is not None else ""
            )
            instructions = f"Call the Chaos Toolkit Python function {call} with these arguments:\n\n{text}{check}"
            return (
                "manual",
                {"instructions": instructions},
                None,
                "manual",
                (f"python provider {call}: a manual step carrying the call (DRPlan does not run experiment code)"),
            )
        if kind == "process":
            return self._process(provider, where, tolerance, hypothesis, timeout)
        return self._http(provider, where, tolerance, hypothesis, timeout)

    def _process(
        self, provider: dict[str, Any], where: str, tolerance: Any, hypothesis: bool, timeout: int | None
    ) -> tuple[str, dict[str, Any], int | None, str, str]:
        path = str(provider.get("path") or "")
        if not path:
            raise ImportFailed(f"{where}.provider.path", "a process provider needs a path")
        arguments = provider.get("arguments", "")
        if isinstance(arguments, list):
            line = " ".join(shlex.quote(str(a)) for a in arguments)
        elif isinstance(arguments, dict):
            line = " ".join(f"{shlex.quote(str(k))} {shlex.quote(str(v))}" for k, v in arguments.items())
        else:
            line = str(arguments or "")
        command = f"{shlex.quote(path)} {line}".strip()
        argv, _ = command_argv(
            command, VARIABLE, lambda m: self._variable(m, f"{where}.provider.arguments"), f"{where}.provider"
        )
        if argv is None:
            text = self._substitute(command, f"{where}.provider.arguments")
            return (
                "manual",
                {"instructions": f"Run this command (it needs a shell):\n\n{text}"},
                timeout,
                "manual",
                ("a process whose arguments need a shell (redirections, pipes): a manual step with the command"),
            )
        params: dict[str, Any] = {"argv": argv}
        detail = f"process → shell argv {argv}"
        if isinstance(tolerance, int) and not isinstance(tolerance, bool) and 0 <= tolerance <= 255:
            params["expected_exit_codes"] = [tolerance]
            detail += f", exit code {tolerance} expected"
        elif tolerance is not None and hypothesis:
            detail += f"; tolerance {tolerance!r} not carried over (exit code 0 expected)"
        return "shell", params, timeout, "converted", detail

    def _http(
        self, provider: dict[str, Any], where: str, tolerance: Any, hypothesis: bool, timeout: int | None
    ) -> tuple[str, dict[str, Any], int | None, str, str]:
        url = self._substitute(str(provider.get("url") or ""), f"{where}.provider.url")
        if not url:
            raise ImportFailed(f"{where}.provider.url", "an http provider needs a url")
        method = str(provider.get("method") or "GET").upper()
        if method not in HTTP_METHODS:
            raise ImportFailed(f"{where}.provider.method", f"{method!r} is not an HTTP method")
        params: dict[str, Any] = {"method": method, "url": url}
        if provider.get("headers"):
            params["headers"] = {
                str(k): str(v) for k, v in self._substitute(provider["headers"], f"{where}.provider.headers").items()
            }
        if provider.get("arguments") is not None and method not in ("GET", "HEAD"):
            params["body"] = self._substitute(provider["arguments"], f"{where}.provider.arguments")
        detail = f"http → {method} {provider.get('url')}"
        if isinstance(tolerance, int) and not isinstance(tolerance, bool):
            params["expected_status"] = tolerance
            detail += f", status {tolerance} expected"
        elif isinstance(tolerance, list) and tolerance and all(isinstance(t, int) for t in tolerance):
            params["expected_status"] = tolerance
            detail += f", status in {tolerance} expected"
        elif isinstance(tolerance, dict) and tolerance.get("type") == "jsonpath":
            path = str(tolerance.get("path") or "")
            if "expect" in tolerance:
                params["json_checks"] = [{"path": path, "equals": tolerance["expect"]}]
                detail += f", JSON {path} = {tolerance['expect']!r} expected"
            elif tolerance.get("count") == 0 and re.fullmatch(r"\$(\.[A-Za-z_][A-Za-z0-9_]*)+", path):
                params["json_checks"] = [{"path": path, "exists": False}]
                detail += f", JSON {path} absent expected"
            else:
                detail += f"; jsonpath tolerance {original_text(tolerance)} not carried over (a 2xx status expected)"
        elif tolerance is not None:
            detail += f"; tolerance {tolerance!r} not carried over (a 2xx status expected)"
        elif not hypothesis:
            detail += " (a 2xx status expected; Chaos Toolkit did not check the status of a method activity)"
        return "http", params, timeout, "converted", detail

    # --- rollbacks ------------------------------------------------------------------------------------

    def _rollback_markers(self, last: str | None) -> str | None:
        rollbacks = require_list(self.doc.get("rollbacks") or [], "rollbacks")
        # Rollbacks of succeeded steps run dependents first: markers chained in reverse make them run in order.
        for index in reversed(range(len(rollbacks))):
            where = f"rollbacks[{index}]"
            activity = require_mapping(rollbacks[index], where)
            if "ref" in activity and "provider" not in activity:
                found = self.activities.get(str(activity["ref"]))
                if found is None:
                    raise ImportFailed(f"{where}.ref", f"no earlier activity named {activity['ref']!r}")
                activity = found[0]
            name = str(activity.get("name") or f"rollback {index + 1}")
            action, params, _, outcome, detail = self._provider(activity, where, False)
            sid = step_id(f"rollback-marker-{name}", self.taken)
            step: dict[str, Any] = {
                "id": sid,
                "title": title(f"Rollback point: {name}", sid),
                "action": "noop",
                "with": {"message": escape_template(f"undone by the rollback {name!r} if the experiment fails")},
                "rollback": {"action": action, "with": params},
            }
            if last:
                step["needs"] = [last]
            self.steps.append(step)
            last = sid
            how = "a manual rollback" if outcome == "manual" else "a rollback"
            (self.report.manual if outcome == "manual" else self.report.converted)(
                where, sid, f"{how} ({detail}), run when a later step fails"
            )
        return last


def _timeout(value: Any, where: str) -> int | None:
    if value is None:
        return None
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return max(1, round(sum(value)))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
        return max(1, round(value))
    raise ImportFailed(where, f"{value!r} is not a number of seconds")
