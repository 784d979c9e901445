"""The importable formats: their names, aliases, how each is parsed and converted, and format detection."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from runbooks import documents
from runbooks.choices import ImportFormat
from runbooks.importers import ansible, asr, chaostoolkit, rundeck, ssm
from runbooks.importers.base import Conversion, ImportFailed

NATIVE = "drplan"
NATIVE_KEYS = {"name", "slug", "version", "steps", "parameters", "category", "approvals", "application"}


@dataclass(frozen=True)
class Format:
    name: str
    label: str
    convert: Callable[[str, Any], Conversion] | None  # None: the native format (runbooks.services)


def _rundeck(text: str, parsed: Any) -> Conversion:
    return rundeck.convert(text, parsed, xml=parsed is None)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(NATIVE, "DRPlan runbook (YAML/JSON)", None),
        Format("rundeck", "Rundeck job definition (YAML or XML)", _rundeck),
        Format("chaostoolkit", "Chaos Toolkit experiment (JSON/YAML)", chaostoolkit.convert),
        Format("ssm", "AWS SSM Automation document (schemaVersion 0.3)", ssm.convert),
        Format("ansible", "Ansible playbook", ansible.convert),
        Format("asr", "Azure Site Recovery recovery plan (ReplicationRecoveryPlans_Get JSON)", asr.convert),
    )
}
ALIASES = {
    "yaml": NATIVE,
    "json": NATIVE,
    "rundeck-yaml": "rundeck",
    "rundeck-xml": "rundeck",
    "chaos-toolkit": "chaostoolkit",
    "chaos": "chaostoolkit",
    "aws-ssm": "ssm",
    "ssm-automation": "ssm",
    "azure-site-recovery": "asr",
}
FORMAT_NAMES = list(FORMATS)
assert ImportFormat.values == FORMAT_NAMES, "runbooks.choices.ImportFormat lists the formats"


def resolve(name: str) -> Format:
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in FORMATS:
        raise ImportFailed("format", f"unknown format {name!r} (known: {', '.join(FORMAT_NAMES)})")
    return FORMATS[key]


def is_xml(text: str) -> bool:
    return text.lstrip("\ufeff \t\r\n").startswith("<")


def parse(text: str) -> Any:
    """YAML or JSON (JSON is YAML, but JSON errors read better): DocumentError with the line on failure."""
    return documents.parse_document(text.lstrip("\ufeff"))


def detect(text: str, parsed: Any) -> str:
    """The format of a document (parsed None: XML)."""
    if parsed is None:
        return "rundeck"
    if isinstance(parsed, dict):
        if "schemaVersion" in parsed or "mainSteps" in parsed:
            return "ssm"
        if "method" in parsed or "steady-state-hypothesis" in parsed:
            return "chaostoolkit"
        operation = str(parsed.get("operationId") or "")
        body = (
            ((parsed.get("responses") or {}).get("200") or {}).get("body")
            if isinstance(parsed.get("responses"), dict)
            else None
        )
        props = (body or parsed).get("properties") if isinstance(body or parsed, dict) else None
        if operation.startswith("Replication") or (isinstance(props, dict) and ("groups" in props or "tasks" in props)):
            return "asr"
        if NATIVE_KEYS & set(parsed):
            return NATIVE  # a DRPlan runbook (its validation names what is wrong with it)
    if isinstance(parsed, list) and parsed and all(isinstance(item, dict) for item in parsed):
        if all("sequence" in item or "workflow" in item for item in parsed):
            return "rundeck"
        if ansible.looks_like_playbook(parsed):
            return "ansible"
    if not isinstance(parsed, (dict, list)):
        return NATIVE  # a scalar: the runbook validation says a document must be a mapping
    raise ImportFailed(
        "format",
        "cannot tell the document's format; give it as format (one of " + ", ".join(FORMAT_NAMES) + ")",
    )
