"""Evidence rules: what satisfies a requirement, in terms of DRPlan's own records.

Each rule judges every item it is about (a plan, an application, a test, a finding …) as met, partial or
not met, lists the records it read as evidence and names each gap. The rule's status combines its items:
all met → met; none met or partial → not met; otherwise partial. A rule with nothing to judge (no finding,
no tier-1 plan) is met and says why. A requirement (compliance/catalogs/*.yaml) names its rules and combines
them the same way, leaving out rules that had nothing to judge (requirement_status). Rules only read
(compliance/evidence.py loads the records once per scope).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from compliance.choices import OverallStatus, RequirementStatus
from compliance.evidence import Evidence, ref, seconds
from plans.choices import CheckType, FailoverMode, PlanStatus, Severity, StrategyKind
from runbooks.choices import RunbookCategory

MET, PARTIAL, NOT_MET = RequirementStatus.MET.value, RequirementStatus.PARTIAL.value, RequirementStatus.NOT_MET.value


@dataclass
class Item:
    status: str
    evidence: list[dict[str, Any]] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    judge: Callable[[Evidence], list[Item]]
    empty: str = ""  # what it means when there is nothing to judge (then the rule is met)


def combine(statuses: Iterable[str]) -> str:
    statuses = list(statuses)
    if all(s == MET for s in statuses):
        return MET
    if all(s == NOT_MET for s in statuses):
        return NOT_MET
    return PARTIAL


def requirement_status(results: list[dict[str, Any]]) -> str:
    """A requirement combines its rules; a rule met only because it had nothing to judge (no finding to follow
    up, no tier-1 plan) adds no evidence, so it counts only when every rule of the requirement is like that:
    a plan never tested fails CP-4 even though it has no finding without an action item."""
    judged = [r["status"] for r in results if not r.get("vacuous")]
    return combine(judged or [r["status"] for r in results])


def overall(statuses: Iterable[str]) -> str:
    statuses = list(statuses)
    if all(s == MET for s in statuses):
        return OverallStatus.COMPLIANT.value
    if all(s == NOT_MET for s in statuses):
        return OverallStatus.NON_COMPLIANT.value
    return OverallStatus.PARTIAL.value


def _date(value: Any) -> str:
    return f"{value:%Y-%m-%d}" if value else "—"


def _period(ev: Evidence) -> str:
    return f"between {ev.period_start:%Y-%m-%d} and {ev.period_end:%Y-%m-%d}"


def _year(ev: Evidence) -> str:
    return f"in the 12 months up to {ev.window_end:%Y-%m-%d}"


def _test_ref(test: Any) -> dict[str, Any]:
    rto = f"RTO {seconds(test.actual_rto_seconds)} (target {seconds(test.target_rto_seconds)})"
    rpo = f"RPO {seconds(test.actual_rpo_seconds)} (target {seconds(test.target_rpo_seconds)})"
    return ref(
        "dr_test_result",
        test.pk,
        f"{test.plan.plan_id} DR test #{test.pk} on {test.test_date:%Y-%m-%d}: {test.outcome}, {rto}, {rpo}",
    )


def _plan_ref(plan: Any, detail: str) -> dict[str, Any]:
    return ref("dr_plan", plan.plan_id, f"plan {plan.plan_id}: {detail}")


def _app_ref(app: Any, detail: str) -> dict[str, Any]:
    return ref("application", app.slug, f"{app.slug}: {detail}")


def _version_ref(version: Any, ev: Evidence) -> dict[str, Any]:
    approvals = [d for d in version.decisions.all() if d.decision == "approve"]
    who = ", ".join(f"{_person(d.user)} {d.decided_at:%Y-%m-%d %H:%M} UTC" for d in approvals)
    state = f"approved {_date(version.approved_at)}" if ev.approved_by_end(version) else version.status
    return ref(
        "runbook_version",
        f"{version.runbook.slug}@{version.version}",
        f"runbook {version.runbook.slug}@{version.version} ({version.category}): {state}"
        + (f", approved by {who}" if who else ""),
    )


def _person(user: Any) -> str:
    if user is None:
        return "system"
    name = user.get_full_name()
    return f"{name} ({user.get_username()})" if name else user.get_username()


# --- plans ----------------------------------------------------------------------------------------


def plan_documented(ev: Evidence) -> list[Item]:
    items = []
    for plan in ev.plans:
        gaps = []
        strategies = [s for s in plan.recovery_strategies.all() if s.steps.all()]
        if plan.status != PlanStatus.ACTIVE:
            gaps.append(f"plan {plan.plan_id} is {plan.status}, not active")
        if not strategies:
            gaps.append(f"plan {plan.plan_id} has no recovery strategy with steps")
        if plan.dr_site_id is None:
            gaps.append(f"plan {plan.plan_id} names no DR site")
        if not plan.applications.all():
            gaps.append(f"plan {plan.plan_id} covers no application")
        described = ", ".join(f"'{s.name}' ({len(s.steps.all())} steps)" for s in strategies) or "no strategy"
        evidence = [
            _plan_ref(
                plan,
                f"{plan.status}, {len(plan.applications.all())} applications, strategies {described}, "
                f"RTO {seconds(plan.rto_seconds)}, RPO {seconds(plan.rpo_seconds)}",
            )
        ]
        status = MET if not gaps else NOT_MET if not strategies or not plan.applications.all() else PARTIAL
        items.append(Item(status, evidence, gaps))
    return items


def plan_reviewed_12m(ev: Evidence) -> list[Item]:
    items = []
    for plan in ev.plans:
        last = plan.last_audit_date
        if last is None:
            items.append(Item(NOT_MET, [], [f"plan {plan.plan_id} has no review date recorded"]))
        elif last > ev.period_end:
            items.append(
                Item(NOT_MET, [], [f"plan {plan.plan_id} was last reviewed on {last}, after the period ended"])
            )
        elif (ev.period_end - last).days > 365:
            items.append(
                Item(
                    NOT_MET,
                    [_plan_ref(plan, f"last reviewed {last}")],
                    [f"plan {plan.plan_id} was last reviewed on {last}, more than 12 months before {ev.period_end}"],
                )
            )
        else:
            items.append(Item(MET, [_plan_ref(plan, f"last reviewed {last}")]))
    return items


def alternate_site(ev: Evidence) -> list[Item]:
    items = []
    for plan in ev.plans:
        if plan.dr_site_id is None:
            items.append(Item(NOT_MET, [], [f"plan {plan.plan_id} names no DR site"]))
        elif plan.dr_site_id == plan.primary_site_id:
            items.append(Item(NOT_MET, [], [f"plan {plan.plan_id} recovers to its own primary site"]))
        else:
            primary = plan.primary_site.code if plan.primary_site else "unspecified"
            items.append(
                Item(MET, [_plan_ref(plan, f"recovers from {primary} to {plan.dr_site.code} ({plan.dr_site.name})")])
            )
    return items


def automated_detection(ev: Evidence) -> list[Item]:
    items = []
    for plan in ev.plans:
        if plan.failover_mode == FailoverMode.MANUAL:
            items.append(
                Item(
                    PARTIAL,
                    [_plan_ref(plan, "failover mode manual")],
                    [f"plan {plan.plan_id}: failures are detected by people (failover mode manual), not by monitoring"],
                )
            )
        else:
            items.append(
                Item(
                    MET,
                    [
                        _plan_ref(
                            plan,
                            f"failover mode {plan.failover_mode}, detection window {plan.detection_window_seconds} s",
                        )
                    ],
                )
            )
    return items


def integrity_checks(ev: Evidence) -> list[Item]:
    items = []
    for plan in ev.plans:
        checks = [
            (s, c)
            for s in plan.recovery_strategies.all()
            for c in s.validation_checks.all()
            if c.check_type == CheckType.DATA_INTEGRITY
        ]
        if checks:
            names = ", ".join(f"'{c.name}'" for _, c in checks)
            items.append(Item(MET, [_plan_ref(plan, f"data-integrity checks after recovery: {names}")]))
        else:
            items.append(Item(NOT_MET, [], [f"plan {plan.plan_id} runs no data-integrity check after recovery"]))
    return items


def bia_covered(ev: Evidence) -> list[Item]:
    items = []
    organisation_wide = [ia for ia in ev.impact_analyses if ia.plan_id is None]
    for plan in ev.plans:
        own = [ia for ia in ev.impact_analyses if ia.plan_id == plan.pk] or organisation_wide
        if own:
            evidence = [
                ref("impact_analysis", ia.pk, f"impact analysis '{ia.scenario}' ({_date(ia.created_at)})") for ia in own
            ]
            items.append(Item(MET, evidence))
        else:
            items.append(Item(NOT_MET, [], [f"no impact analysis covers plan {plan.plan_id}"]))
    return items


# --- applications -----------------------------------------------------------------------------------


def applications_classified(ev: Evidence) -> list[Item]:
    items = []
    for app in ev.applications:
        target = getattr(app, "rto_target", None)
        if target is None:
            items.append(Item(NOT_MET, [], [f"application {app.slug} has no recovery targets (RTO/RPO) recorded"]))
        else:
            items.append(
                Item(
                    MET,
                    [
                        _app_ref(
                            app,
                            f"tier {target.tier}, RTO {seconds(target.rto_target_seconds)}, "
                            f"RPO {seconds(target.rpo_target_seconds)}",
                        )
                    ],
                )
            )
    return items


def owners_named(ev: Evidence) -> list[Item]:
    items = []
    for app in ev.applications:
        if app.owner and app.owner_email:
            items.append(Item(MET, [_app_ref(app, f"owner {app.owner} <{app.owner_email}>")]))
        elif app.owner or app.owner_email:
            missing = "contact address" if app.owner else "owner"
            items.append(Item(PARTIAL, [_app_ref(app, app.owner or app.owner_email)], [f"{app.slug} has no {missing}"]))
        else:
            items.append(Item(NOT_MET, [], [f"application {app.slug} names no owner"]))
    return items


RECOVERY_CATEGORIES = (RunbookCategory.FAILOVER, RunbookCategory.RESTORE)


def runbooks_approved(ev: Evidence) -> list[Item]:
    items = []
    for app in ev.applications:
        versions = ev.versions_of(app, RECOVERY_CATEGORIES)
        approved = [v for v in versions if ev.approved_by_end(v)]
        if approved:
            items.append(Item(MET, [_version_ref(approved[-1], ev)]))
        elif versions:
            latest = versions[-1]
            items.append(
                Item(
                    PARTIAL,
                    [_version_ref(latest, ev)],
                    [
                        f"{app.slug}: runbook {latest.runbook.slug}@{latest.version} is {latest.status}; "
                        f"no version was approved by {ev.window_end:%Y-%m-%d}"
                    ],
                )
            )
        else:
            items.append(Item(NOT_MET, [], [f"{app.slug}: no failover or restore runbook"]))
    return items


def runbook_changes_approved(ev: Evidence) -> list[Item]:
    items = []
    for version in ev.versions:
        if version.approved_at is None or not (ev.window_start <= version.approved_at <= ev.window_end):
            continue
        authors = {version.created_by_id} | {u.pk for u in version.contributors.all()}
        approvals = [d for d in version.decisions.all() if d.decision == "approve"]
        independent = [d for d in approvals if d.user_id not in authors]
        if approvals and len(independent) == len(approvals):
            items.append(Item(MET, [_version_ref(version, ev)]))
        else:
            items.append(
                Item(
                    NOT_MET,
                    [_version_ref(version, ev)],
                    [f"runbook {version} was approved by one of its authors or without a recorded approval"],
                )
            )
    return items


def privileged_access_named(ev: Evidence) -> list[Item]:
    items = []
    for user, roles in ev.privileged_users:
        evidence = [ref("user", user.get_username(), f"{_person(user)}: {', '.join(roles) or 'no role'}")]
        if user.first_name.strip() and user.last_name.strip():
            items.append(Item(MET, evidence))
        else:
            items.append(
                Item(
                    PARTIAL,
                    evidence,
                    [f"account '{user.get_username()}' may run or approve failovers but carries no personal name"],
                )
            )
    return items


# --- tests ----------------------------------------------------------------------------------------


def tests_per_cadence(ev: Evidence) -> list[Item]:
    items = []
    for row, plan in zip(ev.testing_rows(), ev.plans, strict=True):
        needed = max(row["required"], 1)
        tests = ev.tests_in_period(plan)
        evidence = [_test_ref(t) for t in tests]
        counts = f"{row['required']} required ({plan.test_frequency}), {row['done']} done, {row['passed']} passed"
        if row["done"] == 0:
            gap = f"plan {plan.plan_id}: no DR test {_period(ev)} ({counts})"
            items.append(Item(NOT_MET, [], [gap]))
        elif row["passed"] >= needed:
            items.append(Item(MET, [_plan_ref(plan, counts), *evidence]))
        else:
            gap = f"plan {plan.plan_id}: {counts} — fewer passed tests than its frequency requires"
            items.append(Item(PARTIAL, [_plan_ref(plan, counts), *evidence], [gap]))
    return items


def tested_12m(ev: Evidence) -> list[Item]:
    items = []
    for plan in ev.plans:
        tests = ev.tests_in_year(plan)
        passed = [t for t in tests if t.outcome == "passed"]
        if passed:
            items.append(Item(MET, [_test_ref(passed[-1])]))
        elif tests:
            items.append(
                Item(
                    PARTIAL,
                    [_test_ref(t) for t in tests],
                    [f"plan {plan.plan_id}: no DR test passed {_year(ev)}"],
                )
            )
        else:
            items.append(Item(NOT_MET, [], [f"plan {plan.plan_id}: no DR test {_year(ev)}"]))
    return items


def tier1_tested_rto_met(ev: Evidence) -> list[Item]:
    items = []
    for plan in ev.plans:
        if not ev.has_tier1(plan):
            continue
        tests = ev.tests_in_year(plan)
        within = [t for t in tests if t.rto_met]
        if within:
            items.append(Item(MET, [_test_ref(within[-1])]))
        elif tests:
            measured = [t.actual_rto_seconds for t in tests if t.actual_rto_seconds is not None]
            detail = (
                f"best RTO {seconds(min(measured))} against a target of {seconds(plan.rto_seconds)}"
                if measured
                else "no test measured its RTO"
            )
            items.append(
                Item(
                    PARTIAL,
                    [_test_ref(t) for t in tests],
                    [f"tier-1 plan {plan.plan_id}: no DR test met its RTO {_year(ev)} ({detail})"],
                )
            )
        else:
            items.append(Item(NOT_MET, [], [f"tier-1 plan {plan.plan_id}: no DR test {_year(ev)}"]))
    return items


def rpo_met_in_tests(ev: Evidence) -> list[Item]:
    items = []
    for plan in ev.plans:
        tests = ev.tests_in_year(plan)
        within = [t for t in tests if t.rpo_met]
        if within:
            items.append(Item(MET, [_test_ref(within[-1])]))
        elif any(t.actual_rpo_seconds is not None for t in tests):
            items.append(
                Item(
                    PARTIAL,
                    [_test_ref(t) for t in tests],
                    [f"plan {plan.plan_id}: data was not recovered within the RPO in any DR test {_year(ev)}"],
                )
            )
        elif tests:
            items.append(
                Item(
                    PARTIAL,
                    [_test_ref(t) for t in tests],
                    [f"plan {plan.plan_id}: no DR test {_year(ev)} measured the data loss (RPO)"],
                )
            )
        else:
            items.append(Item(NOT_MET, [], [f"plan {plan.plan_id}: no DR test {_year(ev)} showed data recovered"]))
    return items


def _tests_or_gap(ev: Evidence, judge: Callable[[Any], Item]) -> list[Item]:
    tests = ev.tests_in_period()
    if not tests:
        return [Item(NOT_MET, [], [f"no DR test {_period(ev)}"])]
    return [judge(t) for t in tests]


def participants_recorded(ev: Evidence) -> list[Item]:
    def judge(test: Any) -> Item:
        people = list(test.participants.all())
        named = [p for p in people if p.user_id is not None]
        listed = ", ".join(f"{p.name} ({p.role})" for p in people)
        evidence = (
            [ref("dr_test_result", test.pk, f"DR test #{test.pk} ({test.plan.plan_id}): {listed}")] if people else []
        )
        if named:
            return Item(MET, evidence)
        if people:
            return Item(PARTIAL, evidence, [f"DR test #{test.pk}: no participant is linked to a user account"])
        return Item(NOT_MET, [], [f"DR test #{test.pk} ({test.plan.plan_id}, {test.test_date:%Y-%m-%d}) lists nobody"])

    return _tests_or_gap(ev, judge)


def lessons_recorded(ev: Evidence) -> list[Item]:
    def judge(test: Any) -> Item:
        if test.lessons_learned.strip():
            return Item(MET, [ref("dr_test_result", test.pk, f"DR test #{test.pk}: {test.lessons_learned.strip()}")])
        return Item(
            NOT_MET,
            [],
            [f"DR test #{test.pk} ({test.plan.plan_id}, {test.test_date:%Y-%m-%d}) recorded no lessons learned"],
        )

    return _tests_or_gap(ev, judge)


SERIOUS = (Severity.CRITICAL, Severity.HIGH)


def findings_have_actions(ev: Evidence) -> list[Item]:
    items = []
    for test in ev.tests_in_year():
        actions = list(test.action_items.all())
        complete = [a for a in actions if a.assignee.strip() and a.due_date]
        for finding in test.findings.all():
            if finding.severity not in SERIOUS:
                continue
            evidence = [
                ref("test_finding", finding.pk, f"[{finding.severity}] {finding.description} (DR test #{test.pk})"),
                *(
                    ref(
                        "action_item",
                        a.pk,
                        f"{a.description}: {a.assignee or 'no owner'}, due {_date(a.due_date)}, {a.status}",
                    )
                    for a in actions
                ),
            ]
            label = f"{finding.severity} finding '{finding.description}' (DR test #{test.pk})"
            if complete:
                items.append(Item(MET, evidence))
            elif actions:
                items.append(Item(PARTIAL, evidence, [f"{label}: its action items lack an owner or a due date"]))
            else:
                items.append(Item(NOT_MET, evidence, [f"{label} has no action item"]))
    return items


def action_items_on_track(ev: Evidence) -> list[Item]:
    items = []
    for test in ev.tests_in_year():
        for item in test.action_items.all():
            label = f"action item '{item.description}' (DR test #{test.pk}, {item.assignee or 'no owner'})"
            evidence = [ref("action_item", item.pk, f"{label}: due {_date(item.due_date)}, {item.status}")]
            still_open = item.status in ("open", "in_progress")
            if still_open and item.due_date is None:
                items.append(Item(PARTIAL, evidence, [f"{label} is open with no due date"]))
            elif still_open and item.due_date < ev.period_end:
                items.append(Item(NOT_MET, evidence, [f"{label} is open and was due on {item.due_date}"]))
            else:
                items.append(Item(MET, evidence))
    return items


# --- executions and the audit trail ----------------------------------------------------------------


def failback_ready(ev: Evidence) -> list[Item]:
    items = []
    for plan in ev.plans:
        failbacks = [
            e
            for e in ev.executions
            if e.plan_id == plan.pk and e.execution_type == "failback" and e.status == "completed"
            if e.triggered_at >= ev.year_start
        ]
        strategies = [s for s in plan.recovery_strategies.all() if s.kind == StrategyKind.FAILBACK]
        runbooks = [
            v
            for app in plan.applications.all()
            for v in ev.versions_of(app, (RunbookCategory.FAILBACK,))
            if ev.approved_by_end(v)
        ]
        if failbacks:
            last = failbacks[-1]
            items.append(
                Item(
                    MET,
                    [
                        ref(
                            "execution",
                            last.pk,
                            f"failback #{last.pk} of {plan.plan_id} completed {_date(last.finished_at)}",
                        )
                    ],
                )
            )
        elif strategies or runbooks:
            evidence = [
                ref("recovery_strategy", s.pk, f"{plan.plan_id} strategy '{s.name}' (failback)") for s in strategies
            ]
            evidence += [_version_ref(v, ev) for v in runbooks]
            items.append(
                Item(PARTIAL, evidence, [f"plan {plan.plan_id}: failback is documented but was not run {_year(ev)}"])
            )
        else:
            items.append(Item(NOT_MET, [], [f"plan {plan.plan_id}: no failback strategy or approved failback runbook"]))
    return items


def executions_recorded(ev: Evidence) -> list[Item]:
    items = []
    for execution in ev.executions_in_period():
        label = f"{execution.execution_type} #{execution.pk} of {execution.plan.plan_id} ({execution.status})"
        evidence = [
            ref(
                "execution",
                execution.pk,
                f"{label}, triggered {execution.triggered_at:%Y-%m-%d %H:%M} UTC by {_person(execution.triggered_by)}, "
                f"RTO {seconds(execution.actual_rto_seconds)}",
            )
        ]
        if execution.finished_at is None:
            items.append(Item(PARTIAL, evidence, [f"{label} had not finished when the report was generated"]))
        elif execution.status == "completed" and execution.actual_rto_seconds is None:
            items.append(Item(PARTIAL, evidence, [f"{label} completed without a measured RTO"]))
        else:
            items.append(Item(MET, evidence))
    return items


def audit_chain_intact(ev: Evidence) -> list[Item]:
    seq, head_hash = ev.audit_head
    check = ev.audit_check
    evidence = [ref("audit_chain", seq, f"audit chain head #{seq}, hash {head_hash}")]
    latest = check["latest_checkpoint"]
    if latest:
        evidence.append(
            ref("audit_checkpoint", latest["seq"], f"latest signed checkpoint #{latest['seq']} at {latest['at']}")
        )
    if check["broken"]:
        return [Item(NOT_MET, evidence, [f"the audit chain is broken at {check['broken']}"])]
    if check["checkpoint_problems"]:
        return [Item(NOT_MET, evidence, check["checkpoint_problems"])]
    if not latest:
        return [Item(PARTIAL, evidence, ["no signed audit checkpoint exists yet outside the database"])]
    return [Item(MET, evidence)]


RULES: dict[str, Rule] = {
    rule.id: rule
    for rule in (
        Rule(
            "plan_documented",
            "Every plan in scope is active and documents its recovery: applications, a recovery strategy with "
            "steps, a DR site, RTO and RPO targets.",
            plan_documented,
        ),
        Rule(
            "plan_reviewed_12m",
            "Every plan in scope was reviewed in the 12 months before the period ends.",
            plan_reviewed_12m,
        ),
        Rule(
            "applications_classified",
            "Every application in scope has a criticality tier and recovery targets (RTO, RPO).",
            applications_classified,
        ),
        Rule(
            "owners_named",
            "Every application in scope names an owner and a contact address.",
            owners_named,
        ),
        Rule(
            "runbooks_approved",
            "Every application in scope has an approved failover or restore runbook version by the end of the period.",
            runbooks_approved,
        ),
        Rule(
            "runbook_changes_approved",
            "Every runbook version approved in the period was approved by people other than its authors.",
            runbook_changes_approved,
            empty="no runbook version of an application in scope was approved in the period",
        ),
        Rule(
            "tests_per_cadence",
            "Every plan had at least one DR test in the period, and as many passed tests as its test frequency "
            "requires.",
            tests_per_cadence,
        ),
        Rule(
            "tested_12m",
            "Every plan passed a DR test in the 12 months up to the end of the period.",
            tested_12m,
        ),
        Rule(
            "tier1_tested_rto_met",
            "Every plan with a tier-1 application had a DR test in the 12 months up to the end of the period that "
            "met its RTO.",
            tier1_tested_rto_met,
            empty="no plan in scope has a tier-1 application",
        ),
        Rule(
            "rpo_met_in_tests",
            "Every plan recovered its data within its RPO in a DR test in the 12 months up to the end of the period.",
            rpo_met_in_tests,
        ),
        Rule(
            "participants_recorded",
            "Every DR test in the period lists its participants, at least one of them a user of the platform.",
            participants_recorded,
        ),
        Rule(
            "lessons_recorded",
            "Every DR test in the period recorded its lessons learned.",
            lessons_recorded,
        ),
        Rule(
            "findings_have_actions",
            "Every critical or high finding of a DR test in the 12 months up to the end of the period has an action "
            "item with an owner and a due date.",
            findings_have_actions,
            empty="no DR test in the 12 months up to the end of the period found anything critical or high",
        ),
        Rule(
            "action_items_on_track",
            "No action item of those tests is open past its due date at the end of the period (read with today's "
            "status).",
            action_items_on_track,
            empty="no DR test in the 12 months up to the end of the period has action items",
        ),
        Rule(
            "bia_covered",
            "An impact analysis covers every plan in scope (its own or an organisation-wide one).",
            bia_covered,
        ),
        Rule(
            "alternate_site",
            "Every plan recovers to a DR site other than its primary site.",
            alternate_site,
        ),
        Rule(
            "failback_ready",
            "Every plan can return to its primary site: a failback ran in the 12 months up to the end of the period "
            "(documented failback only: partial).",
            failback_ready,
        ),
        Rule(
            "automated_detection",
            "Every plan detects failures by monitoring (failover mode automatic or semi-automatic).",
            automated_detection,
        ),
        Rule(
            "integrity_checks",
            "Every plan checks data integrity after recovery (a data-integrity validation check).",
            integrity_checks,
        ),
        Rule(
            "executions_recorded",
            "Every failover, failback and DR test run in the period finished with its outcome and, when completed, "
            "a measured RTO.",
            executions_recorded,
            empty="no failover, failback or DR test was run by the engine in the period",
        ),
        Rule(
            "privileged_access_named",
            "Everyone who may run or approve failovers holds an active account with a personal name.",
            privileged_access_named,
            empty="nobody may run or approve failovers",
        ),
        Rule(
            "audit_chain_intact",
            "The audit trail is complete and unaltered when the report is generated: the hash chain verifies and "
            "agrees with the signed checkpoints kept outside the database.",
            audit_chain_intact,
        ),
    )
}


def evaluate_rule(rule_id: str, ev: Evidence) -> dict[str, Any]:
    """One rule's result: status, evidence records and gaps (memoised per scope)."""
    key = f"rule:{rule_id}"
    if key not in ev.cache:
        rule = RULES[rule_id]
        items = rule.judge(ev)
        if not items:
            result = {
                "id": rule.id,
                "title": rule.title,
                "status": MET,
                "evidence": [],
                "gaps": [],
                "note": f"Nothing to judge: {rule.empty or 'nothing in scope'}.",
                "vacuous": True,
            }
        else:
            result = {
                "id": rule.id,
                "title": rule.title,
                "status": combine(i.status for i in items),
                "evidence": [e for i in items for e in i.evidence],
                "gaps": [g for i in items for g in i.gaps],
                "note": "",
                "vacuous": False,
            }
        ev.cache[key] = result
    return ev.cache[key]
