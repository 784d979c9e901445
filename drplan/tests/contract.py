"""Test data for the schemathesis runs over the API: drplan/tests/test_api_contract.py (in process,
`make test`) and bench/api_fuzz.py (a live server, `make bench-fuzz`, which loads this module through
SCHEMATHESIS_HOOKS).

A JSON Schema can say "an integer" but not "the id of a plan that exists", "a site other than the
primary site", "a cron expression" or "a runbook document whose steps' `with` fit their actions".
Schemathesis' positive examples are schema-valid and would still be refused for such reasons alone,
which says nothing about the contract. So the `map_case` hook below rewrites the parts of an example
that were generated as *positive*, using real values from the demo data (`catalogue()`):

- path parameters name an existing object 7 times in 8 (the 8th keeps the generated value: a 404);
- request bodies get existing references and satisfy the cross-field rules the API describes in prose;
- runbook import bodies become real documents (the templates), with a fresh slug or the draft's own.

A component generated as *negative* (a schema violation) is never touched, so every violation is
still sent, now mostly against objects that exist. Choices are derived from the generated example
(a CRC of it), so a run is as deterministic as the generation.
"""

from __future__ import annotations

import base64
import copy
import datetime
import json
import os
import re
import zlib
from typing import Any

import schemathesis
from schemathesis.core import NOT_SET
from schemathesis.core.parameters import ParameterLocation

BODY = ParameterLocation.BODY
IMPORT_FORMATS = ("drplan", "rundeck", "chaostoolkit", "ssm", "ansible", "asr")  # runbooks.choices.ImportFormat
QUERY = ParameterLocation.QUERY

# POST /compliance-reports/verify takes the PDF itself as the body: sent as the bytes they are.
schemathesis.serializer.alias("application/pdf", "application/octet-stream")

CATALOGUE_ENV = "DRPLAN_CONTRACT_CATALOGUE"  # a JSON file written by bench/api_fuzz.py
_catalogue: dict[str, Any] = {}

CRON_EXAMPLES = ["0 3 * * 1", "*/15 * * * *", "30 2 1 * *", "0 0 * * 0"]


def use(catalogue: dict[str, Any]) -> None:
    """Make `catalogue` (from `catalogue()`) the data the hook draws from."""
    _catalogue.clear()
    _catalogue.update(catalogue)


def _data() -> dict[str, Any]:
    if not _catalogue and os.environ.get(CATALOGUE_ENV):
        with open(os.environ[CATALOGUE_ENV]) as handle:
            use({**json.load(handle), "live": True})  # requests are not rolled back: follow them
    return _catalogue


# --- the demo data as plain values ---------------------------------------------------------------


def add_executions() -> None:
    """Dry runs to act on (after seed_demo): a plan's failover and one runbook's run. They are only
    queued: no worker runs in the test, and bench/api_fuzz.py starts none."""
    from django.contrib.auth.models import User

    from failover import services
    from plans.models import DRPlan
    from runbooks.models import RunbookVersion

    admin = User.objects.get(username="admin")
    services.start_failover(DRPlan.objects.get(plan_id="core-commerce"), actor=admin, dry_run=True)
    version = RunbookVersion.objects.filter(runbook__slug="cache-redis-failover").latest("pk")
    services.execute_runbook(version, actor=admin, dry_run=True)
    add_notifications()


def add_notifications() -> None:
    """Notification channels (alert rules and subscriptions must name one), a rule, a subscription and a
    delivery (never sent: no worker runs), so their paths name objects that exist."""
    from analytics.notifications import services
    from analytics.notifications.models import AlertRule, NotificationChannel, Subscription

    hook = NotificationChannel.objects.create(name="ops-webhook", kind="webhook", url="https://hooks.example.com/x")
    services.save_channel_secret(hook, "contract-secret-0123456789")
    mail = NotificationChannel.objects.create(name="dr-team", kind="email", recipients=["dr-team@example.com"])
    rule = AlertRule.objects.create(
        name="RPO", metric="rpo_seconds", scope="all", threshold=300, window_seconds=60, repeat_interval_seconds=600
    )
    rule.channels.set([hook, mail])
    Subscription.objects.create(role="approver", event_kinds=["approval_waiting"], channel=mail)
    services.send_test_message(hook, None)


def catalogue(username: str, password: str) -> dict[str, Any]:
    """Existing objects, by the keys the API takes (needs the database; call after seeding)."""
    from django.contrib.auth.models import User

    from analytics.models import BusinessProcess, DRTestResult, ImpactAnalysis, RTOTarget
    from analytics.notifications.models import AlertRule, Delivery, NotificationChannel, Subscription
    from compliance.models import ComplianceReport, IssuedPdf
    from core.models import AuditEntry, Secret
    from failover.models import FailoverExecution
    from plans import selectors as plan_selectors
    from plans.models import Application, DRPlan, RecoveryStrategy, Site
    from runbooks import selectors as runbook_selectors
    from runbooks.models import Runbook

    graph = plan_selectors.dependency_graph()
    apps = dict(Application.objects.values_list("pk", "slug"))
    runbooks = {}
    for runbook in Runbook.objects.prefetch_related("versions"):
        versions = sorted(runbook.versions.all(), key=lambda v: runbook_selectors.semver_key(v.version))
        runbooks[runbook.slug] = {
            "id": runbook.pk,
            "versions": {v.version: v.status for v in versions},
            "document": _document(versions[-1]) if versions else None,
        }
    executions = {
        str(e.pk): {"plan": e.plan_id, "steps": list(e.step_runs.values_list("step_key", flat=True))}
        for e in FailoverExecution.objects.all()
    }
    return {
        "credentials": {"username": username, "password": password},
        "plans": {plan_id: pk for pk, plan_id in DRPlan.objects.values_list("pk", "plan_id")},
        "plan_sites": {
            key: [primary, dr]
            for pk, plan_id, primary, dr in DRPlan.objects.values_list(
                "pk", "plan_id", "primary_site__code", "dr_site__code"
            )
            for key in (plan_id, str(pk))
        },
        "sites": {code: pk for pk, code in Site.objects.values_list("pk", "code")},
        "applications": {slug: pk for pk, slug in apps.items()},
        "dependencies": {apps[pk]: sorted(apps[dep] for dep in deps) for pk, deps in graph.items()},
        "runbooks": runbooks,
        "executions": executions,
        "users": sorted(User.objects.values_list("username", flat=True)),
        "test_results": {str(pk): plan for pk, plan in DRTestResult.objects.values_list("pk", "plan_id")},
        "rto_targets": list(RTOTarget.objects.values_list("pk", flat=True)),
        "strategies": list(RecoveryStrategy.objects.values_list("pk", flat=True)),
        "impact_analyses": list(ImpactAnalysis.objects.values_list("pk", flat=True)),
        "business_processes": list(BusinessProcess.objects.values_list("pk", flat=True)),
        "sites_with_applications": sorted(
            set(Application.objects.filter(site__isnull=False).values_list("site__code", flat=True))
        ),
        "compliance_reports": list(ComplianceReport.objects.values_list("pk", flat=True)),
        # a signed PDF DRPlan issued (seed_demo attests one report per framework), for /verify
        "report_pdf": base64.b64encode(bytes(issued.pdf)).decode() if (issued := IssuedPdf.objects.first()) else "",
        "audit_seqs": [str(seq) for seq in AuditEntry.objects.order_by("seq").values_list("seq", flat=True)[:50]],
        "secrets": list(Secret.objects.values_list("name", flat=True)),
        "actions": [item["name"] for item in runbook_selectors.action_catalogue()],
        "channels": {name: pk for pk, name in NotificationChannel.objects.values_list("pk", "name")},
        "channel_kinds": {
            key: kind
            for pk, name, kind in NotificationChannel.objects.values_list("pk", "name", "kind")
            for key in (name, str(pk))
        },
        "alert_rules": list(AlertRule.objects.values_list("pk", flat=True)),
        "subscriptions": list(Subscription.objects.values_list("pk", flat=True)),
        "deliveries": list(Delivery.objects.values_list("pk", flat=True)),
    }


def _document(version: Any) -> dict[str, Any]:
    from runbooks import services

    return json.loads(services.export_version(version, "json"))


# --- choosing deterministically from the generated example ---------------------------------------


def _seed(value: Any) -> int:
    return zlib.crc32(json.dumps(value, sort_keys=True, default=str).encode())


def _pick(options: list[Any], seed: int) -> Any:
    return options[seed % len(options)] if options else None  # None: a live run removed them all


def _keys(mapping: dict[str, int]) -> list[Any]:
    """A resource by natural key or by id, both as the API takes them in a path."""
    return [key for slug, pk in sorted(mapping.items()) for key in (slug, str(pk))]


_PATHS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"/plans/\{id\}"), "plans"),
    (re.compile(r"/sites/\{id\}"), "sites"),
    (re.compile(r"/applications/\{id\}"), "applications"),
    (re.compile(r"/runbooks/\{id\}"), "runbooks"),
    (re.compile(r"/executions/\{id\}"), "executions"),
    (re.compile(r"/test-results/\{id\}"), "test_results"),
    (re.compile(r"/rto-targets/\{id\}"), "rto_targets"),
    (re.compile(r"/recovery-strategies/\{id\}"), "strategies"),
    (re.compile(r"/impact-analyses/\{id\}"), "impact_analyses"),
    (re.compile(r"/impact-analysis/\{pk\}"), "impact_analyses"),
    (re.compile(r"/business-processes/\{id\}"), "business_processes"),
    (re.compile(r"/compliance-reports/\{id\}"), "compliance_reports"),
    (re.compile(r"/audit-log/\{seq\}"), "audit_seqs"),
    (re.compile(r"/secrets/\{name\}"), "secrets"),
    (re.compile(r"/actions/\{id\}"), "actions"),
    (re.compile(r"/notifications/channels/\{id\}"), "channels"),
    (re.compile(r"/rto-rpo/alerts/\{id\}"), "alert_rules"),
    (re.compile(r"/notifications/subscriptions/\{id\}"), "subscriptions"),
    (re.compile(r"/notifications/deliveries/\{id\}"), "deliveries"),
]


def _fill_path(path: str, params: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    seed = _seed(params)
    if seed % 8 == 7:
        return params  # keep the generated value: mostly a 404, which is documented
    kind = next((kind for pattern, kind in _PATHS if pattern.search(path)), None)
    if kind is None:
        return params
    filled = dict(params)
    if kind in ("plans", "sites", "applications", "channels"):
        filled["id"] = _pick(_keys(data[kind]), seed)
    elif kind == "runbooks":
        slug = _pick(sorted(data["runbooks"]), seed)
        runbook = data["runbooks"][slug]
        filled["id"] = _pick([slug, str(runbook["id"])], seed >> 3)
        if "version" in params and runbook["versions"]:
            filled["version"] = _pick(sorted(runbook["versions"]), seed >> 5)
    elif kind == "executions":
        if not data["executions"]:
            return params
        pk = _pick(sorted(data["executions"]), seed)
        filled["id"] = int(pk)
        steps = data["executions"][pk]["steps"]
        if "step_key" in params and steps:
            filled["step_key"] = _pick(steps, seed >> 3)
    elif data[kind]:
        value = _pick(sorted(data[kind]) if isinstance(data[kind], dict) else data[kind], seed)
        value = int(value) if kind == "test_results" else value
        name = next(iter(params))
        filled[name] = value
    return filled


# --- bodies: references and the rules the schema states only in prose -----------------------------


def _application_of(path_params: dict[str, Any], data: dict[str, Any]) -> str | None:
    key = str(path_params.get("id", ""))
    return next((slug for slug, pk in data["applications"].items() if key in (slug, str(pk))), None)


def _safe_dependencies(data: dict[str, Any], slug: str | None) -> list[str]:
    """Applications `slug` may depend on without closing a cycle: not itself, nothing that depends on it."""
    graph = data["dependencies"]
    excluded, todo = {slug}, [slug]
    while todo:
        node = todo.pop()
        for other, deps in graph.items():
            if node in deps and other not in excluded:
                excluded.add(other)
                todo.append(other)
    return sorted(set(data["applications"]) - excluded)


def _runbook_of(path_params: dict[str, Any], data: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    key = str(path_params.get("id", ""))
    return next(((slug, rb) for slug, rb in data["runbooks"].items() if key in (slug, str(rb["id"]))), None)


def _fresh_document(data: dict[str, Any], seed: int) -> dict[str, Any]:
    documents = [rb["document"] for _, rb in sorted(data["runbooks"].items()) if rb["document"]]
    document = copy.deepcopy(_pick(documents, seed))
    document.update(slug=f"contract-{seed % 100000}", name=f"Contract run {seed % 100000}", version="1.0.0")
    return _with_existing_application(document, data, seed)


def _with_existing_application(document: dict[str, Any], data: dict[str, Any], seed: int) -> dict[str, Any]:
    if document.get("application") not in data["applications"]:  # renamed or deleted in a live run
        document["application"] = _pick(sorted(data["applications"]), seed) if data["applications"] else None
    return document


def _fill_body(case: schemathesis.Case, data: dict[str, Any]) -> Any:
    path, method, body = case.operation.path, case.method.upper(), case.body
    seed = _seed(body)
    plan_ids = sorted(data["plans"].values())
    if path.endswith("/auth/token"):
        return {**body, **data["credentials"]} if isinstance(body, dict) else body
    if re.search(r"/runbooks/?$|/runbooks/import/?$", path):
        document = _fresh_document(data, seed)
        if "multipart" in (case.media_type or ""):  # an upload of the document's file, if the form looks valid
            looks_valid = (
                isinstance(body, dict)
                and isinstance(body.get("file"), bytes)
                and set(body) <= {"file", "format"}
                and body.get("format") in (None, *IMPORT_FORMATS)
            )
            return {"file": json.dumps(document).encode()} if looks_valid else body
        return {"document": document} if isinstance(body, dict) and "document" in body else document
    if re.search(r"/runbooks/\{id\}/versions/\{version\}/?$", path) and method == "PUT":
        found = _runbook_of(case.path_parameters, data)
        if found is None or not found[1]["document"]:
            return body
        document = copy.deepcopy(found[1]["document"])
        document.update(slug=found[0], version=str(case.path_parameters.get("version")))
        return _with_existing_application(document, data, seed)
    if re.search(r"/runbooks/\{id\}/versions/?$", path) and method == "POST":
        found = _runbook_of(case.path_parameters, data)
        if found is None:
            return body
        new_version = f"{7 + seed % 50}.{seed % 7}.0"
        versions = sorted(found[1]["versions"])
        if "yaml" in (case.media_type or "") or (isinstance(body, dict) and "document" in body):
            if not found[1]["document"]:
                return body
            document = {**copy.deepcopy(found[1]["document"]), "slug": found[0], "version": new_version}
            document = _with_existing_application(document, data, seed)
            return {"document": document} if isinstance(body, dict) and "document" in body else document
        copy_body: dict[str, Any] = {"version": new_version}
        if versions and seed % 2:
            copy_body["from_version"] = _pick(versions, seed >> 2)
        return copy_body
    if path.rstrip("/").endswith("/compliance-reports/verify"):
        pdf = base64.b64decode(data.get("report_pdf") or "")
        if not pdf:
            return body
        return pdf if isinstance(body, bytes) else body
    if not isinstance(body, dict):
        return body
    body = copy.deepcopy(body)
    if path.rstrip("/").endswith("/compliance-reports") and method == "POST":
        body.update(_report_scope_and_period(body, data, seed))
    elif re.search(r"/runbooks/\{id\}/execute/?$", path):
        found = _runbook_of(case.path_parameters, data)
        body["parameters"] = {}
        if "version" in body and found is not None and found[1]["versions"]:
            body["version"] = _pick(sorted(found[1]["versions"]), seed)
    elif re.search(r"/(failover|failback|test)/?$|/failover/validate/?$|/test/schedule/?$", path):
        body["plan"] = _pick(_keys(data["plans"]), seed)
        body["parameters"] = {}
        if "disaster_declared_at" in body:
            body["disaster_declared_at"] = None  # the rules tie it to the trigger time and now
        if path.rstrip("/").endswith("/test/schedule"):
            cron = body.get("cron")
            if cron is not None or body.get("frequency") is None:  # exactly one of the two
                body["frequency"] = None
                body["cron"] = _pick(CRON_EXAMPLES, seed)
    elif path.rstrip("/").endswith("/failover/cancel"):
        if data["executions"]:
            body["execution"] = int(_pick(sorted(data["executions"]), seed))
    elif "/business-processes" in path:
        body.update(_business_process_rules(body, data, seed))
    elif re.search(r"/impact-analysis(/scenario)?/?$", path):
        body.update(_scenario_rules(body, data, seed, needs_plan=not path.rstrip("/").endswith("/scenario")))
    elif "/plans" in path:
        codes = sorted(data["sites"])
        primary, dr = data["plan_sites"].get(str(case.path_parameters.get("id")), [None, None])
        if body.get("primary_site") is not None:  # a plan recovers somewhere else than where it runs
            body["primary_site"] = _pick([c for c in codes if "dr_site" in body or c != dr] or [None], seed)
        if body.get("dr_site") is not None:
            current = body.get("primary_site", primary)
            body["dr_site"] = _pick([c for c in codes if c != current] or [None], seed >> 2)
        if "sites" in body:
            body["sites"] = sorted({_pick(codes, seed + i) for i, _ in enumerate(body["sites"])})
        if "applications" in body:
            slugs = sorted(data["applications"])
            body["applications"] = sorted({_pick(slugs, seed + i) for i, _ in enumerate(body["applications"])})
    elif "/applications" in path:
        if body.get("site") is not None:
            body["site"] = _pick(sorted(data["sites"]), seed)
        if "depends_on" in body:
            app = _application_of(case.path_parameters, data) if "{id}" in path else None
            allowed = _safe_dependencies(data, app)  # no cycles
            picked = {_pick(allowed, seed + i) for i, _ in enumerate(body["depends_on"])} if allowed else set()
            body["depends_on"] = sorted(picked)
    elif "/rto-targets" in path:
        if "application" in body:
            body["application"] = _pick(sorted(data["applications"]), seed)
    elif "/recovery-strategies" in path:
        if "plan" in body:
            body["plan"] = _pick(plan_ids, seed)
        for index, step in enumerate(body.get("steps") or []):
            if isinstance(step, dict) and "order" in step:
                step["order"] = index + 1  # positions are unique
    elif "/test-results" in path:
        if "plan" in body:
            body["plan"] = _pick(plan_ids, seed)
        if body.get("execution") is not None:  # an execution of that plan, or none
            plan = body.get("plan", data["test_results"].get(str(case.path_parameters.get("id"))))
            mine = [int(pk) for pk, e in sorted(data["executions"].items()) if e["plan"] == plan]
            body["execution"] = _pick(mine, seed) if mine else None
        for participant in body.get("participants") or []:
            if isinstance(participant, dict) and participant.get("user") is not None:
                participant["user"] = _pick(data["users"], seed)
        if isinstance(body.get("test_date"), str) and body["test_date"].startswith("0001-01-01"):
            # year 1 with a positive offset is before year 1 in UTC: the server refuses it (400 naming
            # test_date), and a JSON Schema date-time cannot say so
            body["test_date"] = "2001" + body["test_date"][4:]
    elif "/monitors" in path:  # an existing application, no plan, probes of a read-only action with its params
        if "application" in body:
            body["application"] = _pick(sorted(data["applications"]), seed)
        if "plan" in body:
            body["plan"] = None
        if isinstance(body.get("probes"), list):
            for i, probe in enumerate(p for p in body["probes"] if isinstance(p, dict)):
                probe.update(key=f"probe-{i}", action="tcp", params={"host": "db.example", "port": 5432})
    elif "/impact-analyses" in path:
        if body.get("plan") is not None:
            body["plan"] = _pick(plan_ids, seed)
    elif "/notifications/" in path or "/rto-rpo/alert" in path:
        body = _notification_body(case, body, data, seed)
    elif re.search(r"/runbooks/\{id\}/?$", path) and body.get("application") is not None:
        body["application"] = _pick(sorted(data["applications"]), seed)
    return body


def _notification_body(case: schemathesis.Case, body: dict[str, Any], data: dict[str, Any], seed: int) -> Any:
    """The rules of channels, alert rules and subscriptions stated in prose: a webhook has an http(s) URL and a
    secret, an e-mail channel neither; a rule's scope names its plan or application and nothing else, and
    existing channels; a subscription names one of role, user and email, existing objects, each kind once."""
    path, method = case.operation.path, case.method.upper()
    if "/notifications/channels" in path:
        kind = body.get("kind") or data.get("channel_kinds", {}).get(str(case.path_parameters.get("id")))
        if "recipients" in body:
            body["recipients"] = [f"ops{i}@example.com" for i, _ in enumerate(body["recipients"])]
        if kind == "webhook":
            if "url" in body or method in ("POST", "PUT") or "kind" in body:
                body["url"] = "https://hooks.example.com/drplan"
            if method in ("POST", "PUT") or "kind" in body:
                body["secret"] = body.get("secret") or "contract-secret-0123456789"
        elif kind == "email":
            body.pop("secret", None)
            body["url"] = ""
    elif "/rto-rpo/alert" in path:
        channels = sorted(data.get("channels", {}))
        if "channels" in body:
            body["channels"] = sorted({_pick(channels, seed + i) for i in range(max(1, len(body["channels"])))})
        if "scope" in body:
            scope = body["scope"]
            body["plan"] = _pick(sorted(data["plans"]), seed) if scope == "plan" else None
            body["application"] = _pick(sorted(data["applications"]), seed) if scope == "application" else None
        else:
            body.pop("plan", None)
            body.pop("application", None)
        if isinstance(body.get("threshold"), (int, float)) and body.get("metric") in (None, "availability_percent"):
            body["threshold"] = min(body["threshold"], 100)
        elif body.get("metric") == "availability_percent" and "threshold" not in body:
            body["threshold"] = 99.5  # the rule's stored threshold may be no percent (a cross-field rule)
    elif "/notifications/subscriptions" in path:
        if body.get("user") == "":
            body["user"] = None  # "" names nobody: the API wants null to clear a reference
        targets = [name for name in ("role", "user", "email") if body.get(name)]
        for extra in targets[1:]:
            body[extra] = None if extra == "user" else ""
        if body.get("user"):
            body["user"] = _pick(data["users"], seed)
        if body.get("email"):
            body["email"] = "dr-team@example.com"
        if body.get("plan") is not None:
            body["plan"] = _pick(sorted(data["plans"]), seed)
        if "channel" in body:
            body["channel"] = _pick(sorted(data.get("channels", {})), seed)
        if isinstance(body.get("event_kinds"), list):
            body["event_kinds"] = list(dict.fromkeys(body["event_kinds"]))
    return body


def _business_process_rules(body: dict[str, Any], data: dict[str, Any], seed: int) -> dict[str, Any]:
    """Existing applications; a cost curve starting at 0 with increasing breakpoints of one kind each; a weekly
    profile of 7 rows or none (plans/costs.py states the rules the JSON Schema cannot)."""
    changed: dict[str, Any] = {}
    if "applications" in body:
        slugs = sorted(data["applications"])
        changed["applications"] = sorted({_pick(slugs, seed + i) for i, _ in enumerate(body["applications"])})
    if "cost_curve" in body:
        changed["cost_curve"] = [
            {"from_hours": float(i * 4), ("multiplier" if (seed >> i) % 2 else "cost_per_hour"): float(1 + i)}
            for i in range(seed % 4)
        ]
    if "weekly_profile" in body:
        changed["weekly_profile"] = (
            [[float((seed + d + h) % 3) for h in range(24)] for d in range(7)] if seed % 2 else []
        )
    return changed


def _scenario_rules(body: dict[str, Any], data: dict[str, Any], seed: int, *, needs_plan: bool) -> dict[str, Any]:
    """What is lost: a site that runs applications, or existing applications, not both; an existing plan;
    a time within the years the API takes (a timeline must fit in a date)."""
    changed: dict[str, Any] = {}
    if "site" in body or "applications" not in body:
        changed["site"] = _pick(data["sites_with_applications"], seed)
        body.pop("applications", None)
    else:
        slugs = sorted(data["applications"])
        changed["applications"] = sorted({_pick(slugs, seed + i) for i in range(max(1, len(body["applications"])))})
    if "plan" in body or needs_plan:
        changed["plan"] = _pick(_keys(data["plans"]), seed >> 2)
    if body.get("at") is not None:
        changed["at"] = f"20{10 + seed % 20}-0{1 + seed % 9}-1{seed % 9}T{seed % 24:02d}:30:00Z"
    return changed


def _report_scope_and_period(body: dict[str, Any], data: dict[str, Any], seed: int) -> dict[str, Any]:
    """What POST /compliance-reports states in prose: existing plans, or all_plans and no plans; a period
    that starts no later than today and ends on or after its start."""
    changed: dict[str, Any] = {}
    if body.get("all_plans"):
        changed["plans"] = []
    else:
        keys = _keys(data["plans"])
        changed["plans"] = sorted({_pick(keys, seed + i) for i in range(max(1, len(body.get("plans") or [])))})
    try:
        start = datetime.date.fromisoformat(str(body.get("period_start")))
        end = datetime.date.fromisoformat(str(body.get("period_end")))
    except ValueError:
        return changed
    today = datetime.date.today()
    start, end = sorted((max(start, datetime.date(1970, 1, 1)), max(end, datetime.date(1970, 1, 1))))
    start = min(start, today)
    changed.update(period_start=start.isoformat(), period_end=max(end, start).isoformat())
    return changed


def _fill_rto_rpo_query(query: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """What /rto-rpo, its history and violations state in prose: plan and application exist; the history takes
    a period or from/to (left to the tests: a date-time the schema allows, such as a leap second, may not be
    a real one) and answers each resolution over a bounded span (raw and minute: a week)."""
    seed = _seed(query)
    if query.get("plan"):
        query["plan"] = _pick(_keys(data["plans"]), seed)
    if query.get("application"):
        query["application"] = _pick(sorted(data["applications"]), seed)
    query.pop("from", None)
    query.pop("to", None)
    if query.get("resolution") in ("raw", "minute") and query.get("period") in ("30d", "90d", "1y"):
        query["resolution"] = "day"
    return query


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: schemathesis.Case) -> schemathesis.Case:
    data = _data()
    if not data or case.meta is None:
        return case
    negative = case.meta.is_negative_at
    if case.meta.phase.name == "stateful":
        return case  # values come from earlier responses on purpose
    if case.path_parameters and not negative(ParameterLocation.PATH):
        case.path_parameters = _fill_path(case.operation.path, case.path_parameters, data)
    if case.query and "/rto-rpo" in case.operation.path and not negative(QUERY):
        case.query = _fill_rto_rpo_query(dict(case.query), data)
    verify = case.operation.path.rstrip("/").endswith("/compliance-reports/verify")  # a PDF: bytes
    if case.body is not NOT_SET and (verify or not isinstance(case.body, bytes)) and not negative(BODY):
        case.body = _fill_body(case, data)
    return case


# --- a live run: follow what the requests changed -----------------------------------------------

_NATURAL_KEYS = {"sites": "code", "applications": "slug", "plans": "plan_id"}


@schemathesis.hook
def after_call(context: schemathesis.HookContext, case: schemathesis.Case, response: Any) -> None:
    """Against a live server (bench/api_fuzz.py) requests are not rolled back: what a request deleted or
    renamed is no longer offered, new dependencies count for cycles, and runs started can be acted on.
    In process every request is rolled back: nothing to follow."""
    data = _data()
    if not data.get("live") or not 200 <= response.status_code < 300 or case.method.upper() == "GET":
        return
    body = _json(response)
    if "/applications" in case.operation.path and "depends_on" in body:
        data["dependencies"][body["slug"]] = body["depends_on"]
    if {"execution_type", "step_runs"} <= set(body):
        steps = [step["step_key"] for step in body["step_runs"]]
        data["executions"][str(body["id"])] = {"plan": body["plan"], "steps": steps}
    kind = next((kind for pattern, kind in _PATHS if pattern.search(case.operation.path)), None)
    if kind is None or "{" not in case.operation.path.rstrip("/").rsplit("/", 1)[-1]:
        return  # not the resource itself (an action under it, or a list)
    key = str(next(iter(case.path_parameters.values()), ""))
    if case.method.upper() == "DELETE":
        _forget(data, kind, key)
    elif kind in _NATURAL_KEYS and body.get(_NATURAL_KEYS[kind]) not in (None, *data[kind]):
        _rename(data, kind, str(body["id"]), body[_NATURAL_KEYS[kind]])


@schemathesis.hook
def before_call(context: schemathesis.HookContext, case: schemathesis.Case, kwargs: dict[str, Any]) -> None:
    """The stateful phase (bench only) builds its requests from earlier responses, after `map_case`:
    its positive bodies get their references here, at call time. The path, which carries the chain
    of calls, is left alone."""
    data = _data()
    meta = case.meta
    if not data.get("live") or meta is None or meta.phase.name != "stateful" or meta.is_negative_at(BODY):
        return
    if case.body is not NOT_SET and not isinstance(case.body, bytes):
        case.body = _fill_body(case, data)


def _json(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except (ValueError, TypeError):
        return {}
    return body if isinstance(body, dict) else {}


def _rename(data: dict[str, Any], kind: str, pk: str, new: str) -> None:
    """Object `pk` of `kind` has a new natural key: so do the references to it."""
    old = next((name for name, value in data[kind].items() if str(value) == pk), None)
    data[kind] = {(new if name == old else name): value for name, value in data[kind].items()}
    if old is None:
        data[kind][new] = int(pk)
    if kind == "applications":
        data["dependencies"] = {
            (new if app == old else app): [new if dep == old else dep for dep in deps]
            for app, deps in data["dependencies"].items()
        }
    elif kind == "sites":
        data["plan_sites"] = {
            plan: [new if c == old else c for c in codes] for plan, codes in data["plan_sites"].items()
        }
    elif kind == "plans":
        data["plan_sites"] = {(new if plan == old else plan): codes for plan, codes in data["plan_sites"].items()}


def _forget(data: dict[str, Any], kind: str, key: str) -> None:
    """Drop the object named `key` (natural key or id) and every reference to it."""
    entries = data.get(kind)
    if isinstance(entries, list):
        data[kind] = [item for item in entries if str(item) != key]
        return
    if not isinstance(entries, dict):
        return
    gone = [
        name
        for name, value in entries.items()
        if key in (name, str(value.get("id") if isinstance(value, dict) else value))
    ]
    for name in gone:
        del entries[name]
        if kind == "applications":
            data["dependencies"] = {
                app: [dep for dep in deps if dep != name] for app, deps in data["dependencies"].items() if app != name
            }
        if kind == "sites":
            data["plan_sites"] = {
                plan: [code if code != name else None for code in codes] for plan, codes in data["plan_sites"].items()
            }
        if kind == "plans":
            data["plan_sites"] = {plan: codes for plan, codes in data["plan_sites"].items() if plan != name}
