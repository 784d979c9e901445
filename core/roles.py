"""The five roles and the permissions each holds.

viewer    reads plans, runbooks, executions, tests and reports (not the audit log).
operator  viewer + runs tests, failovers and runbooks; confirms manual steps.
approver  the DR manager: operator + authors plans, runbooks, strategies, targets,
          test results and impact analyses; approves runbook versions and executions.
auditor   reads everything including the audit log, compliance, users and their roles;
          changes nothing, but attests compliance reports (which signs them).
admin     everything, including users.

`python manage.py setup_roles` applies this idempotently.

The checks every app makes live here too: who holds a role (`holds_role`, `role_names` + `has_role`
for several checks with one query, `role_holders` as a user filter) and the permission check of the
use cases (`require_permission`). The permission names stay with the app that declares them.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q

from core.exceptions import PermissionDenied

VIEWER, OPERATOR, APPROVER, AUDITOR, ADMIN = "viewer", "operator", "approver", "auditor", "admin"
ROLES = (VIEWER, OPERATOR, APPROVER, AUDITOR, ADMIN)

DOMAIN_APPS = ("plans", "runbooks", "failover", "analytics", "compliance", "mlservice")

# Models whose rows operators create when they run things.
OPERATOR_MODELS = {"failover.failoverexecution", "failover.steprun", "failover.executionevent"}
# Models the DR manager (approver) authors.
AUTHORED_MODELS = {
    "plans.site",
    "plans.application",
    "plans.applicationdependency",
    "plans.drplan",
    "plans.recoverystrategy",
    "plans.strategystep",
    "plans.strategycondition",
    "plans.validationcheck",
    "plans.planapprovallevel",
    "core.secret",
    "runbooks.runbook",
    "runbooks.runbookversion",
    "runbooks.runbookparameter",
    "runbooks.runbookstep",
    "runbooks.approvallevel",
    "runbooks.runbookapproval",
    "analytics.rtotarget",
    "analytics.drtestresult",
    "analytics.testfinding",
    "analytics.testparticipant",
    "analytics.actionitem",
    "analytics.impactanalysis",
    # alerts and notifications (analytics/notifications/): the DR manager decides who is told what
    "analytics.notificationchannel",
    "analytics.alertrule",
    "analytics.subscription",
    "analytics.businessprocess",
    "analytics.monitor",
    "analytics.probe",
    "compliance.compliancereport",
    "compliance.compliancerequirement",
}
# Extra permissions by role (custom Meta.permissions declared on models).
EXTRA = {
    OPERATOR: {"failover.run_failover", "failover.run_test", "failover.confirm_step", "core.view_secret"},
    APPROVER: {
        "core.view_secret",
        "failover.run_failover",
        "failover.run_test",
        "failover.confirm_step",
        "runbooks.approve_runbookversion",
        "failover.approve_execution",
        "compliance.attest_compliancereport",
    },
    # Auditors review who holds which role, too, and attest compliance reports (which signs them).
    AUDITOR: {
        "core.view_auditentry",
        "core.view_secret",
        "auth.view_user",
        "auth.view_group",
        "compliance.attest_compliancereport",
    },
}


def _model_labels(app_labels: tuple[str, ...]) -> list[str]:
    return [m._meta.label_lower for a in app_labels for m in apps.get_app_config(a).get_models()]


def permission_codes_for(role: str) -> set[str]:
    """The full "app_label.codename" permission set a role holds."""
    domain = _model_labels(DOMAIN_APPS)
    view = {f"{label.split('.')[0]}.view_{label.split('.')[1]}" for label in domain}
    change = {
        f"{label.split('.')[0]}.{verb}_{label.split('.')[1]}"
        for label in AUTHORED_MODELS
        for verb in ("add", "change", "delete")
    }
    run = {
        f"{label.split('.')[0]}.{verb}_{label.split('.')[1]}" for label in OPERATOR_MODELS for verb in ("add", "change")
    }
    if role == VIEWER:
        return view
    if role == OPERATOR:
        return view | run | EXTRA[OPERATOR]
    if role == APPROVER:
        return view | run | change | EXTRA[APPROVER]
    if role == AUDITOR:
        return view | EXTRA[AUDITOR]
    if role == ADMIN:
        return {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")}
    raise ValueError(f"unknown role {role!r}")


def _resolve(codes: set[str]) -> list[Permission]:
    wanted = {tuple(code.split(".", 1)) for code in codes}
    perms = [
        p for p in Permission.objects.select_related("content_type") if (p.content_type.app_label, p.codename) in wanted
    ]
    found = {(p.content_type.app_label, p.codename) for p in perms}
    missing = wanted - found
    if missing:
        raise LookupError(
            "permissions not found (run migrate first?): " + ", ".join(sorted(".".join(m) for m in missing))
        )
    return perms


@transaction.atomic
def setup_roles() -> dict[str, int]:
    """Create or update the role groups so each holds exactly its permissions."""
    counts = {}
    for role in ROLES:
        group, _ = Group.objects.get_or_create(name=role)
        perms = _resolve(permission_codes_for(role))
        group.permissions.set(perms)
        counts[role] = len(perms)
    return counts


def holds_role(user: Any, role: str) -> bool:
    """Does `user` hold `role` (a group)? Superusers hold every role."""
    return bool(user.is_superuser or user.groups.filter(name=role).exists())


def role_names(user: Any) -> set[str] | None:
    """The user's roles (groups), read once for several checks (`has_role`); None for a superuser,
    who holds every role."""
    if user.is_superuser:
        return None
    return set(user.groups.values_list("name", flat=True))


def has_role(roles: set[str] | None, role: str) -> bool:
    """Is `role` among `roles`, as `role_names` returns them (None: every role)?"""
    return roles is None or role in roles


def role_holders(role: str) -> Q:
    """A filter on the user model: the users who hold `role` (its group's members and superusers)."""
    return Q(is_superuser=True) | Q(groups__name=role)


class RoleBackend(ModelBackend):
    """Django's ModelBackend, with the first permission check on a user object asked of the database alone.

    ModelBackend answers any check by loading every permission the user holds directly and through each
    group (two queries returning a role's whole list, ~100 rows for an approver). An API request checks one
    permission, so here the first check is one EXISTS for that permission; a check of a second, different
    permission on the same user object loads them all once, as ModelBackend does. The answers are those of
    ModelBackend (inactive users hold nothing, object permissions are not supported), and nothing is kept
    beyond the user object, so a role or permission taken away is refused by the next request.
    """

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return False
        if hasattr(user_obj, "_perm_cache"):
            return perm in user_obj._perm_cache
        checked = user_obj.__dict__.setdefault("_role_backend_checks", {})
        if perm not in checked:
            if checked:
                return perm in self.get_all_permissions(user_obj)
            app_label, _, codename = perm.partition(".")
            checked[perm] = (
                Permission.objects.filter(Q(user=user_obj) | Q(group__user=user_obj))
                .filter(content_type__app_label=app_label, codename=codename)
                .exists()
            )
        return checked[perm]


def require_permission(actor: Any, permission: str, what: str, *, system: bool = True) -> None:
    """Raise PermissionDenied ("You need the PERMISSION permission to WHAT.") unless `actor` holds
    `permission`. Use cases are called by the API, the CLI and the system (schedules, the reaper): a
    None actor is the system and passes, unless `system` is False (a decision only a person makes)."""
    if actor is None and system:
        return
    if actor is None or not getattr(actor, "is_authenticated", False) or not actor.has_perm(permission):
        raise PermissionDenied(f"You need the {permission} permission to {what}.")
