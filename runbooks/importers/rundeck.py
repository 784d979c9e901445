"""Rundeck job definitions (YAML job lists and XML `<joblist>`; an XML `<executions>` record is read for its
workflow) → one runbook.

Options → parameters (a secure option → a secret reference); `exec` commands → `shell` steps (on the
worker) or `ssh.run` steps (when the job dispatches to nodes), always as argv lists: `${option.X}` becomes
`{{ params.X }}` inside one argv element, never re-split or given to a shell; a command that needs a shell
(pipes, redirections, other variables) becomes a manual step with the original command. Inline scripts
without option references run as `[interpreter, -c, script]`; script files, job references and plugin steps
become manual steps. Node filters that name hosts → one step per host (`target_host` parameter otherwise);
the sequence strategy → dependencies (node-first: every command on a node before the next node;
step-first/sequential: a command on every node before the next command; parallel: none); `keepgoing` →
continue on failure; an error handler → the step's rollback (DRPlan runs it when a later step fails, Rundeck
ran it when this one failed: the report says so).
"""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException

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

FORMAT = "rundeck"
OPTION_REF = re.compile(r"\$\{option\.([A-Za-z0-9_.-]+)\}|@option\.([A-Za-z0-9_.-]+)@|\$RD_OPTION_([A-Z0-9_]+)")
PARAM_NAME = re.compile(r"[^A-Za-z0-9_]")
HOST_KEYS = ("name", "hostname", "nodename")
STRATEGIES = ("node-first", "step-first", "sequential", "parallel")
SSH_PARAMS = {
    "ssh_username": {"type": "string", "description": "User on the target hosts (Rundeck's node username)."},
    "ssh_known_hosts": {"type": "string", "secret": True, "description": "Secret holding the hosts' known_hosts."},
    "ssh_key": {"type": "string", "secret": True, "description": "Secret holding the SSH private key."},
}


# --- XML → the YAML shape ------------------------------------------------------------------------------


def parse_xml(text: str) -> list[dict[str, Any]]:
    """A `<joblist>` or `<executions>` document as a list of jobs in Rundeck's YAML shape. defusedxml: no
    entity expansion, no external entities, no DTD retrieval."""
    try:
        root = ElementTree.fromstring(text, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise ImportFailed(
            "document", f"XML refused: {type(exc).__name__} (DTDs and entities are not allowed)"
        ) from None
    except ElementTree.ParseError as exc:
        line, column = exc.position
        raise ImportFailed(f"line {line}", f"invalid XML at line {line}, column {column + 1}: {exc}") from None
    if root.tag == "joblist":
        return [_xml_job(job, f"joblist.job[{i}]", "sequence") for i, job in enumerate(root.findall("job"))]
    if root.tag == "executions":
        return [
            _xml_job(execution, f"executions.execution[{i}]", "workflow", record=True)
            for i, execution in enumerate(root.findall("execution"))
        ]
    raise ImportFailed(root.tag, "not a Rundeck job list: the root element must be <joblist> (or <executions>)")


def _text(element: Any, tag: str) -> str | None:
    found = element.find(tag)
    return found.text if found is not None and found.text is not None else None


def _bool(value: Any) -> bool:
    return str(value).strip().lower() == "true"


def _xml_job(job: Any, where: str, sequence_tag: str, *, record: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"name": _text(job, "name") or "", "description": _text(job, "description") or ""}
    if record:
        out["name"] = f"{_text(job, 'project') or 'rundeck'} execution {job.get('id', '')}".strip()
        out["_record"] = {k: _text(job, k) for k in ("dateStarted", "dateCompleted", "status", "user") if _text(job, k)}
    options = job.find("context/options")
    if options is not None:
        out["options"] = []
        for option in options.findall("option"):
            item = {k: v for k, v in option.attrib.items()}
            item["required"] = _bool(item.get("required", "false"))
            item["secure"] = _bool(item.get("secure", "false"))
            item["multivalued"] = _bool(item.get("multivalued", "false"))
            if _text(option, "description"):
                item["description"] = _text(option, "description")
            out["options"].append(item)
    filters = job.find("nodefilters")
    dispatch = job.find("dispatch") if job.find("dispatch") is not None else job.find("nodefilters/dispatch")
    node_dispatch = _text(job, "doNodedispatch")
    if filters is not None and (node_dispatch is None or _bool(node_dispatch)):
        out["nodefilters"] = {"filter": _text(filters, "filter") or ""}
        if dispatch is not None:
            out["nodefilters"]["dispatch"] = {child.tag: child.text for child in dispatch}
    sequence = job.find(sequence_tag)
    if sequence is None:
        raise ImportFailed(f"{where}.{sequence_tag}", "the job has no <sequence> of steps")
    commands = []
    for command in sequence.findall("command"):
        commands.append(_xml_command(command))
    out["sequence"] = {
        "keepgoing": _bool(sequence.get("keepgoing", "false")),
        "strategy": sequence.get("strategy", "node-first"),
        "commands": commands,
    }
    out["_where"] = where
    out["_sequence_tag"] = sequence_tag
    return out


def _xml_command(command: Any) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if _text(command, "description"):
        item["description"] = _text(command, "description")
    for tag in ("exec", "script", "scriptfile", "scripturl", "scriptargs", "scriptInterpreter"):
        if command.find(tag) is not None:
            item[tag] = _text(command, tag) or ""
    jobref = command.find("jobref")
    if jobref is not None:
        item["jobref"] = dict(jobref.attrib)
    for tag, node_step in (("node-step-plugin", True), ("step-plugin", False)):
        plugin = command.find(tag)
        if plugin is not None:
            item["type"] = plugin.get("type", "")
            item["nodeStep"] = node_step
            item["configuration"] = {e.get("key"): e.get("value") for e in plugin.findall("configuration/entry")}
    handler = command.find("errorhandler")
    if handler is not None:
        item["errorhandler"] = _xml_command(handler)
    return item


# --- The conversion ---------------------------------------------------------------------------------------


def convert(text: str, parsed: Any, *, xml: bool) -> Conversion:
    jobs = (
        parse_xml(text)
        if xml
        else [require_mapping(j, f"[{i}]") for i, j in enumerate(require_list(parsed, "document"))]
    )
    if not jobs:
        raise ImportFailed("document", "no job in the file")
    if len(jobs) > 1:
        raise ImportFailed("document", f"the file holds {len(jobs)} jobs; import them one file per job")
    return _Job(jobs[0], text).convert()


class _Job:
    def __init__(self, job: dict[str, Any], text: str) -> None:
        self.job = job
        self.text = text
        self.where = job.get("_where", "[0]")
        self.report = ImportReport(FORMAT)
        self.params: dict[str, Any] = {}
        self.option_names: dict[str, str] = {}  # Rundeck name -> parameter name
        self.secure: set[str] = set()
        self.taken: set[str] = set()

    def convert(self) -> Conversion:
        job = self.job
        name = title(job.get("name"), "Rundeck job")
        if job.get("_record"):
            record = job["_record"]
            self.report.notes.append(
                "An execution record, not a job definition: its workflow is imported; "
                + ", ".join(f"{k} {v}" for k, v in record.items())
                + " dropped (history, not a procedure)."
            )
        self._options()
        hosts = self._hosts()
        sequence = require_mapping(job.get("sequence"), f"{self.where}.{job.get('_sequence_tag', 'sequence')}")
        seq_where = f"{self.where}.{job.get('_sequence_tag', 'sequence')}"
        commands = require_list(sequence.get("commands", []), f"{seq_where}.commands")
        strategy = str(sequence.get("strategy") or "node-first")
        if strategy not in STRATEGIES:
            self.report.dropped(f"{seq_where}.strategy", f"unknown strategy {strategy!r}: the steps run node-first")
            strategy = "node-first"
        keepgoing = _bool(sequence.get("keepgoing", False))
        grid: list[list[str]] = []  # [command][host] -> step id
        steps: list[dict[str, Any]] = []
        for index, command in enumerate(commands):
            where = f"{seq_where}.commands[{index}]"
            command = require_mapping(command, where)
            row = []
            for host in hosts:
                step = self._command(command, where, host, index)
                if keepgoing:
                    step["continue_on_failure"] = True
                steps.append(step)
                row.append(step["id"])
            grid.append(row)
        if not steps:
            raise ImportFailed(f"{seq_where}.commands", "the job has no steps")
        self._dependencies(steps, grid, strategy, len(hosts))
        self.report.converted(f"{seq_where}.strategy", None, f"{strategy}: steps ordered by dependencies")
        if keepgoing:
            self.report.converted(f"{seq_where}.keepgoing", None, "every step continues on failure")
        for key in ("schedule", "schedules", "notification", "timeout", "retry", "loglevel", "group"):
            if job.get(key):
                self.report.dropped(f"{self.where}.{key}", f"Rundeck's {key} has no place in a runbook")
        document = {
            "name": name,
            "slug": make_slug("rundeck", name),
            "version": import_version(self.text),
            "category": "maintenance",
            "description": str(job.get("description") or "") + f"\n\nImported from Rundeck job {name!r}.",
            "parameters": self.params,
            "steps": steps,
        }
        dispatch = (job.get("nodefilters") or {}).get("dispatch") or {}
        threads = str(dispatch.get("threadcount") or "").strip()
        if threads.isdigit() and int(threads) > 0:
            document["parallelism"] = min(int(threads), 1000)
        return Conversion(document, self.report)

    def _options(self) -> None:
        options = self.job.get("options") or []
        if isinstance(options, dict):  # the older YAML form: {name: {…}}
            options = [{"name": k, **(v or {})} for k, v in options.items()]
        for index, option in enumerate(require_list(options, f"{self.where}.options")):
            where = f"{self.where}.options[{index}]"
            option = require_mapping(option, where)
            raw = str(option.get("name") or "")
            if not raw:
                raise ImportFailed(f"{where}.name", "an option needs a name")
            if _bool(option.get("secure", False)):
                self.secure.add(raw)
                self.report.converted(
                    where,
                    None,
                    f"secure option {raw!r} → the secret reference {{{{ secrets.{_secret_name(raw)} }}}}"
                    f" (define secret {_secret_name(raw)!r})",
                )
                continue
            pname = PARAM_NAME.sub("_", raw)
            if pname[0].isdigit():
                pname = f"option_{pname}"
            self.option_names[raw] = pname
            default = option.get("value")
            required = _bool(option.get("required", False))
            if default is None and not required:
                default = ""
            description = str(option.get("description") or "")
            if option.get("values"):
                description += f" Allowed values in Rundeck: {option['values']}."
            if _bool(option.get("multivalued", False)):
                delimiter = option.get("delimiter", ",")
                description += f" Multi-valued: the values joined by {delimiter!r}."
            self.params[pname] = {
                "type": "string",
                "default": None if default is None else str(default),
                "description": description.strip(),
            }
            renamed = f" (renamed from {raw!r})" if pname != raw else ""
            self.report.converted(where, None, f"option → parameter {pname!r}{renamed}")

    def _hosts(self) -> list[str | None]:
        filters = self.job.get("nodefilters")
        if not filters:
            self.report.converted(f"{self.where}.nodefilters", None, "no node dispatch: the steps run on the worker")
            return [None]
        filters = require_mapping(filters, f"{self.where}.nodefilters")
        text = str(filters.get("filter") or "").strip()
        hosts = _filter_hosts(text)
        self.params.update({k: dict(v) for k, v in SSH_PARAMS.items()})
        if hosts:
            self.report.converted(
                f"{self.where}.nodefilters.filter", None, f"node filter {text!r} → target hosts {', '.join(hosts)}"
            )
            return hosts
        self.params["target_host"] = {
            "type": "string",
            "description": f"The host Rundeck's node filter {text!r} selected.",
        }
        self.report.converted(
            f"{self.where}.nodefilters.filter",
            None,
            f"node filter {text!r} selects from Rundeck's node inventory → the parameter target_host",
        )
        return ["{{ params.target_host }}"]

    def _ref(self, where: str) -> Any:
        def convert(match: re.Match[str]) -> str:
            raw = match.group(1) or match.group(2)
            if raw is None:  # $RD_OPTION_X: match by upper-cased name
                wanted = match.group(3)
                raw = next(
                    (n for n in [*self.option_names, *self.secure] if PARAM_NAME.sub("_", n).upper() == wanted), None
                )
                if raw is None:
                    raise ImportFailed(where, f"{match.group(0)} refers to an option the job does not define")
            if raw in self.secure:
                return "{{ secrets." + _secret_name(raw) + " }}"
            if raw not in self.option_names:
                known = ", ".join(sorted(self.option_names)) or "none"
                raise ImportFailed(
                    where,
                    f"{match.group(0)} refers to option {raw!r}, which the job does not define (options: {known})",
                )
            return "{{ params." + self.option_names[raw] + " }}"

        return convert

    def _runner(self, host: str | None, argv: list[str]) -> tuple[str, dict[str, Any]]:
        if host is None:
            return "shell", {"argv": argv}
        return "ssh.run", {
            "host": host,
            "username": "{{ params.ssh_username }}",
            "known_hosts_secret": "{{ params.ssh_known_hosts }}",
            "key_secret": "{{ params.ssh_key }}",
            "argv": argv,
        }

    def _command(self, command: dict[str, Any], where: str, host: str | None, index: int) -> dict[str, Any]:
        on = "" if host is None else f" on {host}" if "{{" not in host else " on the target host"
        label = command.get("description") or command.get("exec") or command.get("type") or f"step {index + 1}"
        sid = step_id(f"{index + 1}-{label}"[:60] + ("" if host is None or "{{" in host else f"-{host}"), self.taken)
        step_title = title(f"{label}{on}", f"Step {index + 1}")
        action, params, detail, outcome = self._action(command, where, host)
        step: dict[str, Any] = {"id": sid, "title": step_title, "action": action, "with": params}
        if outcome == "manual":
            self.report.manual(where, sid, detail)
        else:
            self.report.converted(where, sid, detail)
        handler = command.get("errorhandler")
        if handler:
            h_action, h_params, h_detail, h_outcome = self._action(
                require_mapping(handler, f"{where}.errorhandler"), f"{where}.errorhandler", host
            )
            step["rollback"] = {"action": h_action, "with": h_params}
            note = (
                f"error handler → the rollback of step {sid} ({h_detail}); DRPlan runs it when a later step fails "
                "(and the run rolls back), Rundeck ran it when this step failed"
            )
            (self.report.manual if h_outcome == "manual" else self.report.converted)(f"{where}.errorhandler", sid, note)
        return step

    def _action(self, command: dict[str, Any], where: str, host: str | None) -> tuple[str, dict[str, Any], str, str]:
        """(action, with, what it became, "converted" or "manual")."""
        if "exec" in command:
            text = str(command["exec"] or "")
            argv, _ = command_argv(text, OPTION_REF, self._ref(f"{where}.exec"), f"{where}.exec")
            if argv:
                action, params = self._runner(host, argv)
                return action, params, f"exec → {action} argv {argv}", "converted"
            return (
                "manual",
                {"instructions": self._manual_text("Run this command", text, where, host)},
                ("exec needs a shell (pipes, redirections or variables): a manual step with the original command"),
                "manual",
            )
        if "script" in command:
            script = str(command["script"] or "")
            refs = OPTION_REF.findall(script) or "${" in script
            if not refs and script.strip():
                interpreter = str(command.get("scriptInterpreter") or "/bin/sh").split()
                args = str(command.get("args") or command.get("scriptargs") or "")
                argv_args, _ = command_argv(args, OPTION_REF, self._ref(f"{where}.args"), f"{where}.args")
                if argv_args is not None or not args.strip():
                    argv = [*interpreter, "-c", escape_template(script), interpreter[-1], *(argv_args or [])]
                    action, params = self._runner(host, argv)
                    return (
                        action,
                        params,
                        f"inline script → {action} {interpreter[0]} -c (the script as written)",
                        "converted",
                    )
            return (
                "manual",
                {"instructions": self._manual_text("Run this script", script, where, host)},
                ("an inline script that uses option references or variables: a manual step with the script"),
                "manual",
            )
        if "jobref" in command:
            ref = command["jobref"]
            what = ref if isinstance(ref, str) else f"{ref.get('group', '')}/{ref.get('name', '')}".strip("/")
            return (
                "manual",
                {"instructions": escape_template(f"Run the Rundeck job {what}.\n\n") + original_text(ref)},
                ("a job reference: a manual step (the referenced job is not in this file)"),
                "manual",
            )
        kind = command.get("type") or (
            "scriptfile" if "scriptfile" in command else "scripturl" if "scripturl" in command else ""
        )
        if kind:
            return (
                "manual",
                {
                    "instructions": self._manual_text(
                        f"Rundeck step {kind!r}, do by hand",
                        json.dumps({k: v for k, v in command.items() if k != "errorhandler"}, indent=2),
                        where,
                        host,
                    )
                },
                f"{kind} has no DRPlan action: a manual step with its configuration",
                "manual",
            )
        raise ImportFailed(where, "a step needs exec, script, scriptfile, jobref or a plugin type")

    def _manual_text(self, intro: str, text: str, where: str, host: str | None) -> str:
        converted = OPTION_REF.sub(lambda m: "\x00" + self._ref(where)(m) + "\x00", text)
        parts = converted.split("\x00")
        body = "".join(part if i % 2 else escape_template(part) for i, part in enumerate(parts))
        target = "" if host is None else f" on {host}"
        return f"{intro}{target}:\n\n{body}"

    def _dependencies(self, steps: list[dict[str, Any]], grid: list[list[str]], strategy: str, n_hosts: int) -> None:
        by_id = {s["id"]: s for s in steps}
        if strategy == "parallel":
            return
        if strategy == "node-first":
            order = [grid[c][h] for h in range(n_hosts) for c in range(len(grid))]
            for before, after in itertools.pairwise(order):
                by_id[after]["needs"] = [before]
            return
        for c in range(1, len(grid)):
            for sid in grid[c]:
                by_id[sid]["needs"] = list(grid[c - 1])


def _secret_name(option: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "_", option)
    return f"option_{name}" if name[:1].isdigit() else name


def _filter_hosts(text: str) -> list[str]:
    """Host names a node filter lists literally (`name: a,b`, `hostname: a`, or bare names); [] if the
    filter selects by anything else (tags, attributes, regular expressions)."""
    if not text:
        return []
    hosts: list[str] = []
    for match in re.finditer(r"(\S+?):\s*(\S+)|(\S+)", text):
        key, value, bare = match.groups()
        if bare is not None:
            key, value = "name", bare
        if key not in HOST_KEYS:
            return []
        for host in value.split(","):
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", host):
                return []
            hosts.append(host)
    return list(dict.fromkeys(hosts))
