from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import AnonymousUser, Group, Permission, User
from django.core.management import call_command

from core.exceptions import PermissionDenied
from core.roles import (
    ADMIN,
    APPROVER,
    AUDITOR,
    OPERATOR,
    ROLES,
    VIEWER,
    has_role,
    holds_role,
    permission_codes_for,
    require_permission,
    role_holders,
    role_names,
    setup_roles,
)

WRITE_VERBS = ("add_", "change_", "delete_")


def _group_perms() -> dict[str, set[str]]:
    return {
        group.name: {
            f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")
        }
        for group in Group.objects.filter(name__in=ROLES)
    }


def _writes(codes: set[str]) -> set[str]:
    return {code for code in codes if code.split(".", 1)[1].startswith(WRITE_VERBS)}


@pytest.mark.django_db
class TestSetupRoles:
    def test_idempotent(self) -> None:
        first_counts = setup_roles()
        first = _group_perms()
        out = StringIO()
        call_command("setup_roles", stdout=out)
        assert _group_perms() == first
        assert Group.objects.filter(name__in=ROLES).count() == len(ROLES)
        assert out.getvalue().splitlines() == [f"{role}: {first_counts[role]} permissions" for role in ROLES]

    def test_removes_permissions_added_by_hand(self) -> None:
        setup_roles()
        viewer = Group.objects.get(name=VIEWER)
        viewer.permissions.add(Permission.objects.get(codename="delete_drplan"))
        setup_roles()
        assert "plans.delete_drplan" not in _group_perms()[VIEWER]

    def test_groups_hold_exactly_their_role(self) -> None:
        setup_roles()
        assert _group_perms() == {role: permission_codes_for(role) for role in ROLES}


@pytest.mark.django_db
class TestRoleContents:
    def test_viewer_reads_domain_only(self) -> None:
        codes = permission_codes_for(VIEWER)
        assert _writes(codes) == set()
        assert {"plans.view_drplan", "runbooks.view_runbookversion", "failover.view_failoverexecution"} <= codes
        assert "core.view_auditentry" not in codes
        assert all(code.split(".")[0] in {"plans", "runbooks", "failover", "analytics", "compliance"} for code in codes)

    def test_operator_runs_but_does_not_author(self) -> None:
        codes = permission_codes_for(OPERATOR)
        assert {"failover.run_failover", "failover.run_test", "failover.confirm_step"} <= codes
        assert _writes(codes) == {
            "failover.add_failoverexecution",
            "failover.change_failoverexecution",
            "failover.add_steprun",
            "failover.change_steprun",
            "failover.add_executionevent",
            "failover.change_executionevent",
        }
        assert "runbooks.approve_runbookversion" not in codes
        assert "failover.approve_execution" not in codes
        assert "core.view_auditentry" not in codes

    def test_approver_authors_and_approves(self) -> None:
        codes = permission_codes_for(APPROVER)
        assert {
            "plans.add_drplan",
            "plans.change_drplan",
            "plans.delete_drplan",
            "runbooks.add_runbookversion",
            "analytics.add_drtestresult",
            "compliance.change_compliancereport",
            "runbooks.approve_runbookversion",
            "failover.approve_execution",
            "failover.run_failover",
        } <= codes
        # Evidence is never deleted, not even by the DR manager.
        assert not {c for c in codes if c.startswith("failover.delete_")}
        # The DR manager keeps the secrets runbooks use, but never touches the audit log or users.
        assert {c for c in codes if c.startswith(("core.", "auth."))} == {
            "core.add_secret",
            "core.change_secret",
            "core.delete_secret",
            "core.view_secret",
        }

    def test_auditor_reads_everything_changes_nothing(self) -> None:
        codes = permission_codes_for(AUDITOR)
        assert _writes(codes) == set()
        assert {"core.view_auditentry", "auth.view_user", "auth.view_group"} <= codes
        assert permission_codes_for(VIEWER) <= codes
        assert not {c for c in codes if c.split(".")[1].startswith(("run_", "approve_", "confirm_"))}

    def test_admin_holds_every_permission(self) -> None:
        every = {f"{p.content_type.app_label}.{p.codename}" for p in Permission.objects.select_related("content_type")}
        assert permission_codes_for(ADMIN) == every

    def test_unknown_role_is_refused(self) -> None:
        with pytest.raises(ValueError, match="unknown role 'root'"):
            permission_codes_for("root")

    def test_user_permissions_follow_group(self, users: dict) -> None:
        assert users[AUDITOR].has_perm("core.view_auditentry")
        assert not users[AUDITOR].has_perm("plans.change_drplan")
        assert not users[VIEWER].has_perm("core.view_auditentry")
        assert users[OPERATOR].has_perm("failover.run_failover")
        assert not users[OPERATOR].has_perm("plans.add_drplan")
        assert users[APPROVER].has_perm("runbooks.approve_runbookversion")


@pytest.mark.django_db
class TestRoleChecks:
    """The one home of role checks: every app asks core.roles who holds what."""

    def test_holding_a_role(self, users: dict) -> None:
        assert holds_role(users[APPROVER], APPROVER)
        assert not holds_role(users[OPERATOR], APPROVER)
        assert holds_role(users[ADMIN], AUDITOR)  # a superuser holds every role

    def test_role_names_read_once_for_several_checks(self, users: dict, django_assert_num_queries) -> None:
        with django_assert_num_queries(1):
            roles = role_names(users[OPERATOR])
        assert roles == {OPERATOR}
        assert has_role(roles, OPERATOR)
        assert not has_role(roles, APPROVER)
        assert role_names(users[ADMIN]) is None
        assert has_role(None, APPROVER)

    def test_role_holders_are_the_group_and_superusers(self, users: dict) -> None:
        holders = set(User.objects.filter(role_holders(APPROVER)).values_list("username", flat=True))
        assert holders == {APPROVER, ADMIN}

    def test_require_permission(self, users: dict) -> None:
        require_permission(users[OPERATOR], "failover.run_test", "run DR tests")
        require_permission(None, "failover.run_test", "run DR tests")  # the system
        with pytest.raises(PermissionDenied, match=r"^You need the failover.run_test permission to run DR tests\.$"):
            require_permission(users[VIEWER], "failover.run_test", "run DR tests")
        with pytest.raises(PermissionDenied, match=r"failover\.run_test"):
            require_permission(AnonymousUser(), "failover.run_test", "run DR tests")
        with pytest.raises(PermissionDenied, match="to approve or reject"):
            require_permission(None, "failover.approve_execution", "approve or reject", system=False)


@pytest.mark.django_db
class TestRoleBackend:
    """core.roles.RoleBackend answers as Django's ModelBackend, asking the database for one permission first."""

    def _fresh(self, user: User) -> User:
        return User.objects.get(pk=user.pk)  # a new user object, as each request has

    def test_answers_as_model_backend_for_every_role_and_permission(self, users: dict) -> None:
        from django.contrib.auth.backends import ModelBackend

        from core.roles import RoleBackend

        codes = sorted(permission_codes_for(ADMIN))
        for user in users.values():
            if user.is_superuser:
                continue
            expected = ModelBackend().get_all_permissions(self._fresh(user))
            for code in codes:
                assert RoleBackend().has_perm(self._fresh(user), code) == (code in expected), (user, code)

    def test_the_first_check_is_one_query_a_second_loads_all_once(self, users: dict, django_assert_num_queries):
        user = self._fresh(users[OPERATOR])
        with django_assert_num_queries(1):
            assert user.has_perm("failover.run_failover")
            assert user.has_perm("failover.run_failover")  # remembered on this user object
        with django_assert_num_queries(2):  # ModelBackend's two: direct and through groups
            assert not user.has_perm("plans.add_drplan")
        with django_assert_num_queries(0):
            assert user.has_perms(["plans.view_drplan", "failover.run_failover"])

    def test_a_permission_held_directly_counts(self, users: dict) -> None:
        viewer = users[VIEWER]
        assert not self._fresh(viewer).has_perm("plans.add_drplan")
        viewer.user_permissions.add(Permission.objects.get(codename="add_drplan"))
        assert self._fresh(viewer).has_perm("plans.add_drplan")

    def test_a_permission_taken_from_the_role_is_refused_to_the_next_user_object(self, users: dict) -> None:
        assert self._fresh(users[OPERATOR]).has_perm("failover.run_failover")
        Group.objects.get(name=OPERATOR).permissions.remove(Permission.objects.get(codename="run_failover"))
        assert not self._fresh(users[OPERATOR]).has_perm("failover.run_failover")

    def test_inactive_users_and_object_checks_hold_nothing(self, users: dict) -> None:
        from core.roles import RoleBackend

        approver = self._fresh(users[APPROVER])
        assert not RoleBackend().has_perm(approver, "plans.view_drplan", obj=object())
        approver.is_active = False
        assert not approver.has_perm("plans.view_drplan")
        assert not AnonymousUser().has_perm("plans.view_drplan")
        assert not self._fresh(users[VIEWER]).has_perm("no_such_app.no_such_permission")
