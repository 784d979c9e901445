"""Readiness of a plan to fail over now (POST /failover/validate): each check says pass/fail and why.

Reads only, apart from short TCP connections to the plan's connectivity targets.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model

from core.roles import role_holders
from failover.engine.graph import plan_runbook_versions
from plans.choices import CheckType, PlanStatus, StrategyKind
from plans.models import DRPlan
from runbooks.choices import RunbookCategory, VersionStatus
from runbooks.models import RunbookVersion

_SECRET_REFS = (
    re.compile(r"secrets?\s*\.\s*([A-Za-z0-9_-]+)"),
    re.compile(r"secrets?\s*\[\s*['\"]([^'\"]+)['\"]\s*\]"),
)
MAX_TARGETS = 20


def _check(name: str, passed: bool, detail: str) -> dict[str, Any]:
    return {"name": name, "passed": passed, "detail": detail}


def _strings(value: Any) -> Iterable[tuple[str | None, str]]:
    """(key, string) for every string inside nested dicts/lists."""
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, str):
                yield key, item
            else:
                yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, str):
        yield None, value


def referenced_secrets(version: RunbookVersion) -> set[str]:
    """Secret names a version uses: `{{ secrets.X }}` in step and rollback parameters, and the secrets actions
    take by name (a parameter named `*_secret`: `dsn_secret: X`, `url_secret: X`, `credentials_secret: X` …).
    (Secret parameters have no default: their secret is named at trigger time and checked then.)"""
    names: set[str] = set()
    for step in version.steps.all():
        for key, text in _strings([step.params, step.rollback or {}]):
            if "{{" in text:
                for pattern in _SECRET_REFS:
                    names.update(pattern.findall(text))
            elif key is not None and key.endswith("_secret"):
                names.add(text)
    names.update(p.default for p in version.parameters.filter(secret=True) if isinstance(p.default, str) and p.default)
    return names


def _targets(plan: DRPlan) -> list[tuple[str, str, int]]:
    """(check name, host, port) of the plan's failover connectivity checks whose target has a host and port."""
    found = []
    checks = (
        plan.recovery_strategies.filter(kind=StrategyKind.FAILOVER)
        .values_list("validation_checks__name", "validation_checks__target", "validation_checks__check_type")
        .order_by("validation_checks__id")
    )
    for name, target, check_type in checks:
        if check_type != CheckType.CONNECTIVITY or not target:
            continue
        text = target.strip()
        parts = urlsplit(text if "://" in text else f"tcp://{text}")
        try:
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            port = None
        if parts.hostname and port:
            found.append((name, parts.hostname, port))
    return found[:MAX_TARGETS]


def _reachable(host: str, port: int, timeout: float) -> str | None:
    """None if a TCP connection opens, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _approvers(plan: DRPlan, requester: Any) -> dict[str, Any]:
    levels = list(plan.approval_levels.order_by("level"))
    if not levels:
        return _check("approvers_available", True, "the plan requires no go/no-go approval")
    users = get_user_model().objects.filter(is_active=True)
    if requester is not None and getattr(requester, "pk", None):
        users = users.exclude(pk=requester.pk)
    short = []
    for level in levels:
        candidates = users.filter(role_holders(level.role)).distinct()
        able = [u for u in candidates if u.has_perm("failover.approve_execution")]
        if len(able) < level.min_approvers:
            short.append(f"level {level.level} needs {level.min_approvers} x {level.role!r}, {len(able)} available")
    if short:
        return _check("approvers_available", False, "; ".join(short))
    return _check("approvers_available", True, f"enough approvers for {len(levels)} level(s)")


def check_plan(plan: DRPlan, *, requester: Any = None, connect_timeout: float = 1.0) -> list[dict[str, Any]]:
    from core.models import Secret

    checks = [
        _check(
            "plan_active",
            plan.status == PlanStatus.ACTIVE,
            f"plan {plan.plan_id!r} is {plan.status}",
        )
    ]

    pairs = plan_runbook_versions(plan, RunbookCategory.FAILOVER)
    unapproved = [runbook.slug for runbook, version in pairs if version is None]
    if not pairs:
        checks.append(_check("runbooks_approved", False, "no application of the plan has a failover runbook"))
    elif unapproved:
        checks.append(_check("runbooks_approved", False, "no approved version: " + ", ".join(unapproved)))
    else:
        described = ", ".join(f"{runbook.slug}@{version.version}" for runbook, version in pairs)
        checks.append(_check("runbooks_approved", True, f"approved: {described}"))

    versions = [v for _, v in pairs if v is not None and v.status == VersionStatus.APPROVED]
    wanted = set().union(*(referenced_secrets(v) for v in versions)) if versions else set()
    existing = set(Secret.objects.filter(name__in=wanted).values_list("name", flat=True))
    missing = sorted(wanted - existing)
    if missing:
        checks.append(_check("secrets_present", False, "not defined: " + ", ".join(missing)))
    else:
        checks.append(_check("secrets_present", True, f"{len(wanted)} referenced secret(s) defined"))

    targets = _targets(plan)
    if not targets:
        checks.append(_check("targets_reachable", True, "no host:port connectivity targets to check"))
    else:
        with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
            errors = list(pool.map(lambda t: _reachable(t[1], t[2], connect_timeout), targets))
        failed = [
            f"{name} ({host}:{port}): {err}" for (name, host, port), err in zip(targets, errors, strict=True) if err
        ]
        if failed:
            checks.append(_check("targets_reachable", False, "unreachable: " + "; ".join(failed)))
        else:
            checks.append(_check("targets_reachable", True, f"{len(targets)} target(s) reachable"))

    checks.append(_approvers(plan, requester))
    return checks
