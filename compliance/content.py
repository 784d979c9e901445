"""What a report says, built once from the records (compliance/evidence.py) and the evidence rules
(compliance/rules.py) and frozen as JSON in `ComplianceReport.content`: the PDF is rendered from it, never from
live data, and its SHA-256 is what a verified PDF is compared with.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from compliance.choices import OverallStatus, RequirementStatus
from compliance.evidence import Evidence, seconds
from compliance.rules import evaluate_rule, overall, requirement_status

FORMAT = 1
MET, PARTIAL, NOT_MET, NOT_ASSESSED = (
    RequirementStatus.MET.value,
    RequirementStatus.PARTIAL.value,
    RequirementStatus.NOT_MET.value,
    RequirementStatus.NOT_ASSESSED.value,
)


def canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":"), cls=DjangoJSONEncoder).encode()


def content_hash(content: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(content)).hexdigest()


def _iso(value: Any) -> str | None:
    return value.isoformat() if value is not None else None


def _person(user: Any) -> str:
    if user is None:
        return "system"
    name = user.get_full_name()
    return f"{name} ({user.get_username()})" if name else user.get_username()


def requirement_results(framework: Any, ev: Evidence) -> list[dict[str, Any]]:
    results = []
    for requirement in framework.catalog_requirements.order_by("position"):
        rules = [evaluate_rule(rule_id, ev) for rule_id in requirement.rules]
        status = requirement_status(rules) if rules else NOT_ASSESSED
        results.append(
            {
                "ref": requirement.ref,
                "title": requirement.title,
                "text": requirement.text,
                "parent": requirement.parent_ref,
                "note": requirement.note,
                "status": status,
                "rules": rules,
                "evidence": _unique(e for r in rules for e in r["evidence"]),
                "gaps": list(dict.fromkeys(g for r in rules for g in r["gaps"])),
            }
        )
    return results


def _unique(records: Any) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for record in records:
        seen.setdefault((record["kind"], str(record["id"]), record["label"]), record)
    return list(seen.values())


def _tests(ev: Evidence) -> list[dict[str, Any]]:
    return [
        {
            "id": t.pk,
            "plan_id": t.plan.plan_id,
            "date": _iso(t.test_date),
            "in_period": t.test_date >= ev.window_start,
            "type": t.test_type,
            "outcome": t.outcome,
            "target_rto_seconds": t.target_rto_seconds,
            "actual_rto_seconds": t.actual_rto_seconds,
            "target_rpo_seconds": t.target_rpo_seconds,
            "actual_rpo_seconds": t.actual_rpo_seconds,
            "rto_met": t.rto_met,
            "rpo_met": t.rpo_met,
            "execution": t.execution_id,
            "summary": t.summary,
        }
        for t in ev.tests_in_year() + [t for t in ev.tests_in_period() if t.test_date < ev.year_start]
    ]


def _findings(ev: Evidence) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    findings, actions = [], []
    tests = sorted(set(ev.tests_in_year()) | set(ev.tests_in_period()), key=lambda t: (t.test_date, t.pk))
    for test in tests:
        for finding in test.findings.all():
            findings.append(
                {
                    "id": finding.pk,
                    "test": test.pk,
                    "plan_id": test.plan.plan_id,
                    "date": _iso(test.test_date),
                    "severity": finding.severity,
                    "category": finding.category,
                    "description": finding.description,
                    "remediation": finding.remediation,
                }
            )
        for item in test.action_items.all():
            actions.append(
                {
                    "id": item.pk,
                    "test": test.pk,
                    "plan_id": test.plan.plan_id,
                    "description": item.description,
                    "assignee": item.assignee,
                    "due_date": _iso(item.due_date),
                    "status": item.status,
                    "overdue": item.status in ("open", "in_progress")
                    and item.due_date is not None
                    and item.due_date < ev.period_end,
                }
            )
    return findings, actions


def _approvals(ev: Evidence) -> list[dict[str, Any]]:
    rows = []
    for version in ev.versions:
        for decision in version.decisions.all():
            if decision.decided_at <= ev.window_end:
                rows.append(
                    {
                        "what": f"runbook {version.runbook.slug}@{version.version} ({version.category})",
                        "level": decision.level,
                        "decision": decision.decision,
                        "by": _person(decision.user),
                        "at": _iso(decision.decided_at),
                        "comment": decision.comment,
                    }
                )
    for execution in ev.executions_in_period():
        for decision in execution.approval_decisions.all():
            rows.append(
                {
                    "what": f"{execution.execution_type} #{execution.pk} of {execution.plan.plan_id}",
                    "level": decision.level,
                    "decision": decision.decision,
                    "by": _person(decision.user),
                    "at": _iso(decision.decided_at),
                    "comment": decision.comment,
                }
            )
    return sorted(rows, key=lambda r: r["at"])


def _quarter(value: datetime) -> str:
    return f"{value.year} Q{(value.month - 1) // 3 + 1}"


def _charts(tests: list[dict[str, Any]]) -> dict[str, Any]:
    rto = [
        {
            "date": t["date"],
            "plan_id": t["plan_id"],
            "target": t["target_rto_seconds"],
            "actual": t["actual_rto_seconds"],
        }
        for t in sorted(tests, key=lambda t: t["date"])
        if t["actual_rto_seconds"] is not None
    ]
    quarters: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for t in tests:
        key = _quarter(datetime.fromisoformat(t["date"]))
        quarters[key][0] += 1
        quarters[key][1] += t["outcome"] == "passed"
    return {
        "rto": rto,
        "pass_rate": [{"quarter": q, "tests": n, "passed": p} for q, (n, p) in sorted(quarters.items())],
    }


def _scope(ev: Evidence, all_plans: bool) -> dict[str, Any]:
    plans = []
    for plan in ev.plans:
        plans.append(
            {
                "plan_id": plan.plan_id,
                "name": plan.name,
                "status": plan.status,
                "strategy": plan.strategy,
                "rto_seconds": plan.rto_seconds,
                "rpo_seconds": plan.rpo_seconds,
                "test_frequency": plan.test_frequency,
                "primary_site": plan.primary_site.code if plan.primary_site else None,
                "dr_site": plan.dr_site.code if plan.dr_site else None,
                "applications": [
                    {
                        "slug": app.slug,
                        "name": app.name,
                        "tier": app.tier,
                        "owner": app.owner,
                        "rto_target_seconds": getattr(getattr(app, "rto_target", None), "rto_target_seconds", None),
                        "rpo_target_seconds": getattr(getattr(app, "rto_target", None), "rpo_target_seconds", None),
                    }
                    for app in plan.applications.all()
                ],
            }
        )
    return {"all_plans": all_plans, "plans": plans}


def _summary(requirements: list[dict[str, Any]], testing: list[dict[str, Any]]) -> dict[str, Any]:
    assessed = [r["status"] for r in requirements if r["status"] != NOT_ASSESSED]
    counts = {status: sum(1 for r in requirements if r["status"] == status) for status in (MET, PARTIAL, NOT_MET)}
    counts[NOT_ASSESSED] = len(requirements) - len(assessed)
    status = overall(assessed) if assessed else OverallStatus.NON_COMPLIANT.value
    gaps = list(dict.fromkeys(g for r in requirements for g in r["gaps"]))
    required = sum(r["required"] for r in testing)
    done = sum(r["done"] for r in testing)
    passed = sum(r["passed"] for r in testing)
    label = dict(OverallStatus.choices)[status]
    text = (
        f"{label}: of {len(assessed)} requirements assessed from DRPlan's records, {counts[MET]} met, "
        f"{counts[PARTIAL]} partially met and {counts[NOT_MET]} not met; {counts[NOT_ASSESSED]} are outside the "
        f"platform's records and need a manual assessment. DR tests in the period: {done} performed, {passed} "
        f"passed, {required} required by the plans' test frequencies. {len(gaps)} gaps are named below."
    )
    return {"overall_status": status, "counts": counts, "gaps": gaps, "text": text}


def build(
    *,
    framework: Any,
    ev: Evidence,
    all_plans: bool,
    organisation: str,
    generated_by: str,
    audit_head: tuple[int, str],
    checkpoint: dict[str, Any] | None,
) -> dict[str, Any]:
    requirements = requirement_results(framework, ev)
    testing = [
        {**row, "window_start": _iso(row["window_start"]), "last_test": _iso(row["last_test"])}
        for row in ev.testing_rows()
    ]
    tests = _tests(ev)
    findings, actions = _findings(ev)
    return {
        "format": FORMAT,
        "organisation": organisation,
        "framework": {
            "code": framework.code,
            "name": framework.name,
            "version": framework.version,
            "publisher": framework.publisher,
            "source": framework.source,
            "source_url": framework.source_url,
            "licence": framework.licence,
            "catalog_sha256": framework.catalog_sha256,
        },
        "period": {"start": _iso(ev.period_start), "end": _iso(ev.period_end)},
        "window": {"start": _iso(ev.window_start), "end": _iso(ev.window_end), "year_start": _iso(ev.year_start)},
        "generated_at": _iso(ev.now),
        "generated_by": generated_by,
        "scope": _scope(ev, all_plans),
        "summary": _summary(requirements, testing),
        "requirements": requirements,
        "testing": testing,
        "tests": tests,
        "findings": findings,
        "action_items": actions,
        "approvals": _approvals(ev),
        "charts": _charts(tests),
        "audit": {"head_seq": audit_head[0], "head_hash": audit_head[1], "checkpoint": checkpoint},
    }


def durations(value: float | None) -> str:
    return seconds(value)
