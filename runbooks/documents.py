"""Runbook documents: parse, validate, normalise, render from the database, hash.

The canonical document (what `normalise` returns and `document_from_version`
renders) has every key present, durations in seconds, defaults filled, `needs`
in step order and approval levels sorted. For every valid input `doc`,
`document_from_version(import(doc)) == normalise(doc)`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from django.utils.text import slugify
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError as SchemaError

from core.exceptions import InvalidInput
from core.jsondepth import MAX_JSON_DEPTH, json_too_deep, too_deep_message
from runbooks import actions
from runbooks.templating import check_template

if TYPE_CHECKING:
    from runbooks.models import RunbookVersion

SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "runbook.schema.json"
MAX_DURATION_SECONDS = 30 * 24 * 3600
MAX_DEPTH = 40
MAX_ERRORS = 10
RUNBOOK_KEYS = ("slug",)  # the runbook's identity; everything else in a document belongs to the version
_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$")
_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_REFERENCE = re.compile(r"^([A-Za-z_]\w*)\.([A-Za-z0-9_-]+)")
TEMPLATE_ROOTS = ("params", "steps", "secrets", "plan")


class DocumentError(InvalidInput):
    """A runbook document is malformed or invalid; `errors` lists (path, message) pairs."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors[:MAX_ERRORS]
        message = "; ".join(f"{path}: {msg}" for path, msg in self.errors)
        if len(errors) > MAX_ERRORS:
            message += f"; and {len(errors) - MAX_ERRORS} more"
        super().__init__(message, field=self.errors[0][0])


@cache
def load_schema() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text())


@cache
def _validator() -> Draft202012Validator:
    return Draft202012Validator(load_schema())


# --- Parsing ----------------------------------------------------------------------


class _TooDeep(Exception):
    pass


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases (no 'billion laughs' expansion) and collections nested deeper
    than MAX_JSON_DEPTH (PyYAML composes one Python frame per level: RecursionError otherwise)."""

    depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not supported in runbooks", event.start_mark
            )
        self.depth += 1
        try:
            if self.depth > MAX_JSON_DEPTH and self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent):
                raise _TooDeep
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def detect_format(text: str) -> str:
    return "json" if text.lstrip().startswith(("{", "[")) else "yaml"


def parse_document(text: str, fmt: str | None = None) -> Any:
    """Parse YAML or JSON text (fmt None = detect). Malformed input → DocumentError with line/column;
    nesting deeper than MAX_JSON_DEPTH (core/jsondepth.py) → DocumentError before any parser recurses."""
    fmt = (fmt or detect_format(text)).lower()
    if fmt not in ("yaml", "json"):
        raise DocumentError([("format", f"unknown format {fmt!r}; use 'yaml' or 'json'")])
    try:
        if fmt == "json":
            if json_too_deep(text):
                raise _TooDeep
            return json.loads(text)
        return yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except _TooDeep:
        raise DocumentError([("document", too_deep_message(MAX_JSON_DEPTH))]) from None
    except json.JSONDecodeError as exc:
        raise DocumentError(
            [("document", f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}")]
        ) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise DocumentError([("document", f"invalid YAML{where}: {problem}")]) from None


# --- Validation -------------------------------------------------------------------


def _check_plain_data(value: Any, path: str, errors: list[tuple[str, str]], depth: int = 0) -> None:
    """Only JSON data may reach the database (YAML can produce dates, sets, bytes, NaN …)."""
    if depth > MAX_DEPTH:
        errors.append((path or "document", "nested too deeply"))
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                errors.append((path or "document", f"key {key!r} must be a string (quote it)"))
                continue
            _check_plain_data(item, f"{path}.{key}" if path else key, errors, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_plain_data(item, f"{path}[{index}]", errors, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        errors.append((path, f"{value!r} is not a finite number"))
    elif not isinstance(value, (str, int, float, bool, type(None))):
        errors.append((path, f"a {type(value).__name__} value is not allowed; quote it as a string"))


def _step_label(doc: Any, index: int) -> str:
    steps = doc.get("steps") if isinstance(doc, dict) else None
    step = steps[index] if isinstance(steps, list) and index < len(steps) else None
    step_id = step.get("id") if isinstance(step, dict) else None
    return f"steps[{index}] ({step_id})" if isinstance(step_id, str) and step_id else f"steps[{index}]"


def _render_path(doc: Any, parts: list[Any]) -> str:
    out = ""
    for position, part in enumerate(parts):
        if isinstance(part, int):
            if position == 1 and parts[0] == "steps":
                out = _step_label(doc, part)
            else:
                out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "document"


def _schema_error(doc: Any, error: SchemaError, prefix: list[Any]) -> tuple[str, str]:
    parts = prefix + list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = set(error.schema.get("properties", {}))
        unknown = sorted(k for k in error.instance if k not in allowed)
        known = ", ".join(sorted(allowed)) or "none"
        return _render_path(doc, [*parts, unknown[0]]), f"unknown field (allowed: {known})"
    if error.validator == "required":
        missing = re.match(r"'(.*?)' is a required property", error.message)
        if missing:
            return _render_path(doc, [*parts, missing.group(1)]), "this field is required"
    if error.validator in ("anyOf", "oneOf", "pattern") and "x-error" in error.schema:
        shown = "" if isinstance(error.instance, dict) else f"{error.instance!r} "  # not a whole `with` object
        return _render_path(doc, parts), f"{shown}{error.schema['x-error']}"
    if error.validator == "type" and error.validator_value == "array" and isinstance(error.instance, str):
        return _render_path(doc, parts), f"{error.instance!r} must be a list, not a string"
    return _render_path(doc, parts), error.message


def _schema_errors(
    validator: Draft202012Validator, instance: Any, doc: Any, prefix: list[Any]
) -> list[tuple[str, str]]:
    errors = sorted(validator.iter_errors(instance), key=lambda e: [str(p) for p in e.absolute_path])
    return [_schema_error(doc, e, prefix) for e in errors]


def parse_duration(value: int | str | None) -> int | None:
    if value is None or isinstance(value, int):
        return value
    match = _DURATION.match(value)
    hours, minutes, seconds = (int(g or 0) for g in match.groups())  # type: ignore[union-attr]
    return hours * 3600 + minutes * 60 + seconds


def _type_ok(kind: str, value: Any) -> bool:
    if value is None:
        return True
    if kind == "boolean":
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind == "integer":
        return isinstance(value, int)
    if kind == "number":
        return isinstance(value, (int, float))
    return isinstance(value, str)


def _find_cycle(order: list[str], needs: dict[str, list[str]]) -> list[str] | None:
    """The first dependency cycle found walking steps in order, as a closed path."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for need in needs.get(node, []):
            if state.get(need) == 1:
                return [*stack[stack.index(need) :], need]
            if need not in state:
                found = visit(need)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in order:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def _ancestors(order: list[str], needs: dict[str, list[str]]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}

    def walk(node: str) -> set[str]:
        if node not in result:
            found: set[str] = set()
            for need in needs.get(node, []):
                found |= {need} | walk(need)
            result[node] = found
        return result[node]

    for node in order:
        walk(node)
    return result


def _strings(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{path}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{path}[{i}]")]
    return []


def _check_references(
    label: str,
    value: Any,
    path: str,
    params: set[str],
    step_ids: set[str],
    reachable: set[str],
    errors: list[tuple[str, str]],
) -> None:
    for where, text in _strings(value, path):
        try:
            check_template(text)  # the template language's own rules (whole secrets only …), checked before any run
        except InvalidInput as exc:
            errors.append((f"{label}.{where}", exc.message))
            continue
        for expression in _TEMPLATE.findall(text):
            match = _REFERENCE.match(expression)
            if not match:
                continue
            root, name = match.groups()
            template = "{{ " + expression + " }}"
            field = f"{label}.{where}"
            if root not in TEMPLATE_ROOTS:
                errors.append((field, f"{template}: unknown namespace {root!r} (use {', '.join(TEMPLATE_ROOTS)})"))
            elif root == "params" and name not in params:
                declared = ", ".join(sorted(params)) or "none"
                errors.append((field, f"{template} refers to undeclared parameter {name!r} (declared: {declared})"))
            elif root == "steps" and name not in step_ids:
                errors.append((field, f"{template} refers to unknown step {name!r}"))
            elif root == "steps" and name not in reachable:
                errors.append((field, f"{template} refers to step {name!r}, which this step does not need"))


def _check_action(label: str, action: str, params: Any, field: str, doc: Any, errors: list[tuple[str, str]]) -> None:
    spec = actions.get_action(action)
    if spec is None:
        known = ", ".join(actions.action_names())
        action_field = field.replace("with", "action")
        errors.append((f"{label}.{action_field}", f"unknown action {action!r} (known: {known})"))
        return
    for path, message in _schema_errors(spec.validator, params, doc, []):
        errors.append((f"{label}.{field}" + ("" if path == "document" else f".{path}"), message))


def validate(doc: Any) -> None:
    """Raise DocumentError listing every problem (schema first, then semantic checks)."""
    errors: list[tuple[str, str]] = []
    if not isinstance(doc, dict):
        raise DocumentError([("document", "a runbook document must be a mapping (object) at the top level")])
    _check_plain_data(doc, "", errors)
    if errors:
        raise DocumentError(errors)
    errors = _schema_errors(_validator(), doc, doc, [])
    if errors:
        raise DocumentError(errors)

    slug = doc.get("slug") or slugify(doc["name"])[:100]
    if not slug:
        errors.append(("slug", "cannot be derived from the name; set it explicitly"))
    elif slug.isdigit():
        errors.append(("slug", f"{slug!r} is all digits, which is how numeric ids are written; include a letter"))
    params = doc.get("parameters", {})
    for name, spec in params.items():
        kind = spec.get("type", "string")
        if spec.get("secret") and spec.get("default") is not None:
            errors.append((f"parameters.{name}.default", "a secret parameter cannot have a default"))
        elif not _type_ok(kind, spec.get("default")):
            errors.append((f"parameters.{name}.default", f"{spec['default']!r} is not of type {kind!r}"))

    levels = [level.get("level", index + 1) for index, level in enumerate(doc.get("approvals", []))]
    for index, level in enumerate(levels):
        if level in levels[:index]:
            errors.append((f"approvals[{index}].level", f"level {level} appears more than once"))

    steps = doc["steps"]
    order: list[str] = []
    for index, step in enumerate(steps):
        if step["id"] in order:
            errors.append((f"{_step_label(doc, index)}.id", f"duplicate step id {step['id']!r}"))
        else:
            order.append(step["id"])
    known = set(order)
    needs: dict[str, list[str]] = {}
    for index, step in enumerate(steps):
        label = _step_label(doc, index)
        for need in step.get("needs", []):
            if need == step["id"]:
                errors.append((f"{label}.needs", "a step cannot need itself"))
            elif need not in known:
                errors.append((f"{label}.needs", f"unknown step {need!r}"))
        needs.setdefault(step["id"], []).extend(n for n in step.get("needs", []) if n in known and n != step["id"])
        for key in ("timeout", "estimated_duration"):
            seconds = parse_duration(step.get(key))
            if seconds is not None and seconds > MAX_DURATION_SECONDS:
                errors.append((f"{label}.{key}", f"{step[key]!r} is longer than 30 days"))
        _check_action(label, step["action"], step.get("with", {}), "with", doc, errors)
        rollback = step.get("rollback")
        if rollback:
            _check_action(label, rollback["action"], rollback.get("with", {}), "rollback.with", doc, errors)
    if errors:
        raise DocumentError(errors)

    cycle = _find_cycle(order, needs)
    if cycle:
        raise DocumentError([("steps", "cycle: " + " -> ".join(cycle))])
    ancestors = _ancestors(order, needs)
    for index, step in enumerate(steps):
        label = _step_label(doc, index)
        reachable = ancestors[step["id"]]
        _check_references(label, step.get("with", {}), "with", set(params), known, reachable, errors)
        if step.get("rollback"):
            rollback_reach = reachable | {step["id"]}
            _check_references(label, step["rollback"], "rollback", set(params), known, rollback_reach, errors)
    if errors:
        raise DocumentError(errors)


# --- Normalisation ----------------------------------------------------------------


def normalise(doc: Any) -> dict[str, Any]:
    """Validate, then return the canonical document (every key present, durations in seconds)."""
    validate(doc)
    step_index = {step["id"]: index for index, step in enumerate(doc["steps"])}
    approvals = [
        {
            "level": level.get("level", index + 1),
            "role": level["role"],
            "required": level.get("required", True),
            "approvers": level.get("approvers", 1),
        }
        for index, level in enumerate(doc.get("approvals", []))
    ]
    return {
        "name": doc["name"],
        "slug": doc.get("slug") or slugify(doc["name"])[:100],
        "version": doc["version"],
        "category": doc.get("category", "failover"),
        "description": doc.get("description", ""),
        "application": doc.get("application"),
        "parameters": {
            name: {
                "type": spec.get("type", "string"),
                "default": spec.get("default"),
                "secret": spec.get("secret", False),
                "description": spec.get("description", ""),
            }
            for name, spec in doc.get("parameters", {}).items()
        },
        "parallelism": doc.get("parallelism"),
        "approvals": sorted(approvals, key=lambda level: level["level"]),
        "steps": [_normalise_step(step, step_index) for step in doc["steps"]],
    }


def _normalise_step(step: dict[str, Any], step_index: dict[str, int]) -> dict[str, Any]:
    rollback = step.get("rollback")
    approval = step.get("approval")
    return {
        "id": step["id"],
        "title": step.get("title", step["id"]),
        "description": step.get("description", ""),
        "action": step["action"],
        "with": step.get("with", {}),
        "needs": sorted(step.get("needs", []), key=step_index.__getitem__),
        "timeout": parse_duration(step.get("timeout")),
        "retries": step.get("retries", 0),
        "rollback": {"action": rollback["action"], "with": rollback.get("with", {})} if rollback else None,
        "approval": {"role": approval["role"], "approvers": approval.get("approvers", 1)} if approval else None,
        "estimated_duration": parse_duration(step.get("estimated_duration")),
        "responsible_role": step.get("responsible_role", ""),
        "automated": step.get("automated", step["action"] != "manual"),
        "idempotent": step.get("idempotent", False),
        "continue_on_failure": step.get("continue_on_failure", False),
    }


def version_content(doc: dict[str, Any]) -> dict[str, Any]:
    """The part of a canonical document that belongs to the version (not the runbook's metadata)."""
    return {key: value for key, value in doc.items() if key not in RUNBOOK_KEYS}


# --- Rendering and hashing --------------------------------------------------------


def document_from_version(version: RunbookVersion) -> dict[str, Any]:
    """The canonical document of a stored version."""
    steps = list(version.steps.order_by("number").prefetch_related("needs"))
    return {
        "name": version.name,
        "slug": version.runbook.slug,
        "version": version.version,
        "category": version.category,
        "description": version.description,
        "application": version.application.slug if version.application_id else None,
        "parameters": {
            p.name: {"type": p.type, "default": p.default, "secret": p.secret, "description": p.description}
            for p in version.parameters.order_by("order")
        },
        "parallelism": version.parallelism,
        "approvals": [
            {"level": a.level, "role": a.role, "required": a.required, "approvers": a.min_approvers}
            for a in version.approval_levels.order_by("level")
        ],
        "steps": [
            {
                "id": s.step_id,
                "title": s.title,
                "description": s.description,
                "action": s.action,
                "with": s.params,
                "needs": [n.step_id for n in sorted(s.needs.all(), key=lambda n: n.number)],
                "timeout": s.timeout_seconds,
                "retries": s.retries,
                "rollback": s.rollback,
                "approval": s.approval,
                "estimated_duration": s.estimated_duration_seconds,
                "responsible_role": s.responsible_role,
                "automated": s.automated,
                "idempotent": s.idempotent,
                "continue_on_failure": s.continue_on_failure,
            }
            for s in steps
        ],
    }


def canonical_json(doc: Any) -> str:
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(doc: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(doc).encode()).hexdigest()


def dump_document(doc: dict[str, Any], fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if fmt == "yaml":
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False, width=120)
    raise InvalidInput(f"unknown format {fmt!r}; use 'yaml' or 'json'", field="format")
