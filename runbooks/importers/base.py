"""What every importer shares: the import report, the result of a conversion, errors naming the file's key
or line, and helpers to carry foreign text into a runbook safely (template escaping, argv splitting, slugs).

An importer turns a foreign document into a native runbook document (the dict that runbooks.documents
validates) plus an ImportReport: one entry per thing in the source, saying whether it converted one to one,
became a manual step carrying the original text for a person to follow, or was dropped and why.
"""

from __future__ import annotations

import hashlib
import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from django.utils.text import slugify

from core.exceptions import InvalidInput

CONVERTED = "converted"  # one to one: the step runs what the source ran
MANUAL = "manual"  # a manual step carrying the original text for a person to follow
DROPPED = "dropped"  # not carried over (the reason says why)
OUTCOMES = (CONVERTED, MANUAL, DROPPED)
SHELL_SYNTAX = re.compile(r"[|&;<>`]|\$\(|\$\{?[A-Za-z_]|\*|\?|~")
MAX_SOURCE_BYTES = 1024 * 1024


class ImportFailed(InvalidInput):
    """The source cannot be imported; the message names the file's key or line (API: 400)."""

    default_code = "import_error"

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}", field=where)


@dataclass
class ReportEntry:
    source: str  # where in the source document (key path, e.g. "mainSteps[2] (GetClusterWriterId)")
    outcome: str  # CONVERTED, MANUAL or DROPPED
    detail: str  # what it became, or why it was not carried over
    step: str | None = None  # the DRPlan step id it became, if any

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "outcome": self.outcome, "step": self.step, "detail": self.detail}


@dataclass
class ImportReport:
    format: str
    entries: list[ReportEntry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, source: str, outcome: str, detail: str, step: str | None = None) -> None:
        assert outcome in OUTCOMES, outcome
        self.entries.append(ReportEntry(source, outcome, detail, step))

    def converted(self, source: str, step: str | None, detail: str) -> None:
        self.add(source, CONVERTED, detail, step)

    def manual(self, source: str, step: str | None, detail: str) -> None:
        self.add(source, MANUAL, detail, step)

    def dropped(self, source: str, detail: str) -> None:
        self.add(source, DROPPED, detail)

    def counts(self) -> dict[str, int]:
        return {outcome: sum(1 for e in self.entries if e.outcome == outcome) for outcome in OUTCOMES}

    def as_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "summary": self.counts(),
            "entries": [e.as_dict() for e in self.entries],
            "notes": list(self.notes),
        }


@dataclass
class Conversion:
    """A foreign document converted: the native runbook document and the report."""

    document: dict[str, Any]
    report: ImportReport
    # Applications the runbook recovers that the import matches by name or creates (ASR): [{slug, name, tier}].
    applications: list[dict[str, Any]] = field(default_factory=list)


def import_version(text: str) -> str:
    """The version an import gets: 1.0.0 with the source's hash as a pre-release, so importing the same
    file again finds the same version (idempotent) and a changed file makes a new draft version."""
    return f"1.0.0-import.{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def make_slug(prefix: str, name: str) -> str:
    base = slugify(name)[: 100 - len(prefix) - 1] or "runbook"
    return f"{prefix}-{base}".strip("-")


def step_id(name: str, taken: set[str], fallback: str = "step") -> str:
    """A unique step id (slug) from a source name."""
    base = slugify(str(name))[:90] or fallback
    candidate, number = base, 2
    while candidate in taken:
        candidate = f"{base}-{number}"
        number += 1
    taken.add(candidate)
    return candidate


def title(text: Any, fallback: str) -> str:
    value = " ".join(str(text or "").split()) or fallback
    return value[:200]


def escape_template(text: str) -> str:
    """`text` as a template that renders to itself: foreign `{{ … }}` (Ansible, SSM) is not DRPlan's."""
    return re.sub(r"(\{\{|\{%|\{#)", lambda m: "{{ '" + m.group(1) + "' }}", text)


def original_text(value: Any) -> str:
    """The original content of a source element, as a person reads it (YAML-ish JSON), template-escaped."""
    text = value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False)
    return escape_template(text)


def split_command(command: str, where: str) -> list[str] | None:
    """A command line as an argv list, or None if it uses shell syntax an argv cannot express (pipes,
    redirections, variables, globs …). Malformed quoting → ImportFailed naming `where`."""
    try:
        argv = shlex.split(command, comments=False, posix=True)
    except ValueError as exc:
        raise ImportFailed(where, f"cannot split the command {command!r}: {exc}") from None
    return argv or None


def has_shell_syntax(command: str) -> bool:
    return bool(SHELL_SYNTAX.search(command))


def manual_step(sid: str, step_title: str, instructions: str, **extra: Any) -> dict[str, Any]:
    return {"id": sid, "title": step_title, "action": "manual", "with": {"instructions": instructions}, **extra}


def require_mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ImportFailed(where, f"must be a mapping, not {type(value).__name__}")
    return value


def require_list(value: Any, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ImportFailed(where, f"must be a list, not {type(value).__name__}")
    return value


def command_argv(command: str, refs: re.Pattern[str], convert: Any, where: str) -> tuple[list[str] | None, list[str]]:
    """Split `command` into an argv whose elements carry references (`refs`, e.g. Rundeck's ${option.X})
    converted by `convert(match) -> str` as whole template expressions inside one element each: a
    parameter's value is never re-split or seen by a shell. Returns (argv or None if the command needs a
    shell, the references found)."""
    found: list[str] = []
    placeholders: dict[str, str] = {}

    def hold(match: re.Match[str]) -> str:
        found.append(match.group(0))
        key = f"\x00{len(placeholders)}\x00"
        placeholders[key] = convert(match)
        return key

    held = refs.sub(hold, command)
    if has_shell_syntax(held):
        return None, found
    argv = split_command(held, where)
    if argv is None:
        return None, found
    out = []
    for token in argv:
        for key, value in placeholders.items():
            token = token.replace(key, value)
        out.append(escape_template(token) if not placeholders else _escape_outside(token, placeholders))
    return out, found


def _escape_outside(token: str, placeholders: dict[str, str]) -> str:
    """Escape foreign template markers in `token` except the converted references themselves."""
    values = sorted(set(placeholders.values()), key=len, reverse=True)
    if not values:
        return escape_template(token)
    pattern = re.compile("|".join(re.escape(v) for v in values))
    parts, last = [], 0
    for match in pattern.finditer(token):
        parts.append(escape_template(token[last : match.start()]))
        parts.append(match.group(0))
        last = match.end()
    parts.append(escape_template(token[last:]))
    return "".join(parts)
