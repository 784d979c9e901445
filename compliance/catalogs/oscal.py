"""Read the NIST SP 800-53 rev5 CP family from an OSCAL catalog (JSON): control ids, titles and statements.

The OSCAL catalog (usnistgov/oscal-content) is public domain in the US and CC0 worldwide; the text of
compliance/catalogs/nist_800_53.yaml is made from it by `python manage.py compliance import-oscal PATH`,
which keeps the evidence rules and notes already in the file.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

_INSERT = re.compile(r"\{\{\s*insert:\s*param,\s*([\w.-]+)\s*\}\}")


def _label(part: dict[str, Any]) -> str:
    return next((p["value"] for p in part.get("props", []) if p.get("name") == "label"), "")


def _param_text(param: dict[str, Any]) -> str:
    if "label" in param:
        return f"[Assignment: {param['label']}]"
    select = param.get("select") or {}
    choices = "; ".join(select.get("choice", []))
    how = "one or more" if select.get("how-many") == "one-or-more" else "one"
    return f"[Selection ({how}): {choices}]"


def _prose(text: str, params: dict[str, dict[str, Any]]) -> str:
    def replace(match: re.Match[str]) -> str:
        param = params.get(match.group(1))
        return _param_text(param) if param else "[Assignment: organization-defined value]"

    previous = None
    while previous != text:  # a selection's choice may insert another parameter
        previous, text = text, _INSERT.sub(replace, text)
    return text


def _statement_lines(part: dict[str, Any], params: dict[str, dict[str, Any]], depth: int = 0) -> list[str]:
    lines = []
    label = _label(part)
    prose = _prose(part.get("prose", ""), params).strip()
    if prose or label:
        lines.append(("  " * max(depth - 1, 0)) + " ".join(x for x in (label, prose) if x))
    for child in part.get("parts", []):
        lines.extend(_statement_lines(child, params, depth + 1))
    return lines


def _params(control: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["id"]: p for p in control.get("params", [])}


def cp_controls(path: Path) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(catalog metadata, the CP family's base controls in order: ref, title, text, withdrawn)."""
    catalog = json.loads(Path(path).read_text())["catalog"]
    group = next(g for g in catalog["groups"] if g["id"] == "cp")
    controls = []
    for control in group["controls"]:
        status = next((p["value"] for p in control.get("props", []) if p.get("name") == "status"), "")
        statement = next((p for p in control.get("parts", []) if p.get("name") == "statement"), None)
        text = "\n".join(_statement_lines(statement, _params(control))) if statement else ""
        controls.append(
            {
                "ref": control["id"].upper(),
                "title": control["title"],
                "text": text,
                "withdrawn": status == "withdrawn",
            }
        )
    return catalog["metadata"], controls
