"""The report as a PDF (WeasyPrint), rendered from the report's frozen content: cover, executive summary with
charts, scope, requirements with evidence and gaps, tests, findings and action items, approvals, the audit
chain head and the catalog's source. The report id and content hash are written into the PDF's keywords so a
PDF handed back can be matched with its report (compliance/signing.py)."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from typing import Any

from django.template.loader import render_to_string
from django.utils.safestring import mark_safe

from compliance import charts
from compliance.choices import OverallStatus, RequirementStatus
from compliance.evidence import seconds
from compliance.models import ComplianceReport
from plans.choices import ComplianceFramework

logging.getLogger("weasyprint").setLevel(logging.WARNING)  # its INFO lines narrate every page
logging.getLogger("fontTools").setLevel(logging.WARNING)
KEYWORDS = re.compile(r"drplan-report:(\d+):([0-9a-f]{64})")
STATUS_LABELS = dict(RequirementStatus.choices) | dict(OverallStatus.choices)


def keywords(report: ComplianceReport) -> str:
    return f"drplan-report:{report.pk}:{report.content_sha256}"


def _when(value: str | None) -> str:
    if not value:
        return "—"
    parsed = datetime.fromisoformat(value)
    return f"{parsed:%Y-%m-%d %H:%M} UTC" if "T" in value else f"{parsed:%Y-%m-%d}"


def _day(value: str | None) -> str:
    return value[:10] if value else "—"


def css_string(text: str) -> str:
    """Text for a CSS string (the page header's `content: "…"`), which HTML escaping does not protect: every
    character but letters, digits and plain punctuation is a CSS escape, so nothing can end the string or the
    style element."""
    escaped = "".join(ch if ch.isalnum() or ch in " .,:;-–·#()/" else f"\\{ord(ch):x} " for ch in text)
    return mark_safe(escaped)  # noqa: S308 (escaped above)


def context(report: ComplianceReport) -> dict[str, Any]:
    content = report.content
    tests = content["tests"]
    for test in tests:
        test["date_label"] = _day(test["date"])
        test["target_rto"] = seconds(test["target_rto_seconds"])
        test["actual_rto"] = seconds(test["actual_rto_seconds"])
        test["target_rpo"] = seconds(test["target_rpo_seconds"])
        test["actual_rpo"] = seconds(test["actual_rpo_seconds"])
    requirements = []
    for requirement in content["requirements"]:
        requirements.append(
            {
                **requirement,
                "status_label": STATUS_LABELS[requirement["status"]],
                "depth": _depth(requirement, content["requirements"]),
                "rules": [{**r, "status_label": STATUS_LABELS[r["status"]]} for r in requirement["rules"]],
                # one text block per list: a PDF of a few hundred requirements lays out far faster than with
                # an element per line
                "evidence_text": "\n".join(f"• {e['label']}" for e in requirement["evidence"]),
                "gaps_text": "\n".join(f"• {g}" for g in requirement["gaps"]),
            }
        )
    plans = content["scope"]["plans"]
    for plan in plans:
        plan["rto"] = seconds(plan["rto_seconds"])
        plan["rpo"] = seconds(plan["rpo_seconds"])
        for app in plan["applications"]:
            app["rto"] = seconds(app["rto_target_seconds"])
            app["rpo"] = seconds(app["rpo_target_seconds"])
    window = content["window"]
    return {
        "report": report,
        "c": content,
        "header_left": css_string(f"{content['organisation']} · {content['framework']['name']} · report #{report.pk}"),
        "framework_label": dict(ComplianceFramework.choices).get(report.framework, report.framework),
        "overall_label": STATUS_LABELS[content["summary"]["overall_status"]],
        "requirements": requirements,
        "plans": plans,
        "tests": tests,
        "generated": _when(content["generated_at"]),
        "rto_charts": charts.rto_charts(content["charts"]["rto"], window["year_start"], window["end"]),
        "pass_rate_chart": charts.pass_rate_chart(content["charts"]["pass_rate"]),
        "approvals": [{**a, "at_label": _when(a["at"])} for a in content["approvals"]],
        "action_items": content["action_items"],
        "keywords": keywords(report),
        "attested": report.attested_at is not None,
        "attested_at": f"{report.attested_at:%Y-%m-%d %H:%M} UTC" if report.attested_at else "",
        "checkpoint_at": _when((content["audit"].get("checkpoint") or {}).get("at")),
    }


def _depth(requirement: dict[str, Any], everything: list[dict[str, Any]]) -> int:
    parents = {r["ref"]: r["parent"] for r in everything}
    depth, ref = 0, requirement["parent"]
    while ref and depth < 6:
        depth, ref = depth + 1, parents.get(ref, "")
    return depth


def render_html(report: ComplianceReport) -> str:
    return render_to_string("compliance/report.html", context(report))


def render_pdf(report: ComplianceReport) -> bytes:
    from weasyprint import HTML

    return HTML(string=render_html(report)).write_pdf()
