"""Building the step graph: one runbook version, and a plan's runbooks composed along the dependency map."""

from __future__ import annotations

import pytest

from core.exceptions import Conflict, InvalidInput
from failover.engine import graph
from failover.engine.graph import StepSpec
from failover.tests.engine_factories import make_runbook, runbook_doc, three_app_plan
from failover.tests.factories import make_execution
from plans.tests.factories import make_app, make_plan

pytestmark = pytest.mark.django_db


def test_runbook_steps_copy_the_definition():
    doc = runbook_doc("db-failover")
    doc["steps"].append(
        {
            "id": "confirm",
            "action": "manual",
            "with": {"instructions": "Tell the bank"},
            "needs": ["check"],
            "timeout": "10m",
            "retries": 2,
            "idempotent": True,
            "approval": {"role": "approver", "approvers": 2},
            "rollback": {"action": "noop"},
            "responsible_role": "dba",
        }
    )
    version = make_runbook("db-failover", steps=doc["steps"])
    specs = graph.build_runbook_steps(version, tier=2, prefix="x.")
    assert [(s.step_key, s.needs) for s in specs] == [
        ("x.stop", []),
        ("x.promote", ["x.stop"]),
        ("x.check", ["x.promote"]),
        ("x.confirm", ["x.check"]),
    ]
    confirm = specs[-1]
    assert confirm.instructions == "Tell the bank"
    assert (confirm.timeout_seconds, confirm.retries, confirm.idempotent, confirm.tier) == (600, 2, True, 2)
    assert confirm.approval == {"role": "approver", "approvers": 2}
    assert confirm.rollback == {"action": "noop", "with": {}}
    assert confirm.responsible_role == "dba"
    assert specs[0].instructions == ""


def test_a_steps_needs_come_in_step_order_whatever_order_the_document_lists_them(django_assert_num_queries):
    """The join of a fan-out: its needs in the runbook's step order, each step's own only, read in two queries
    (the steps, then every edge) whatever the number of steps."""
    steps = [{"id": "start", "action": "noop"}]
    steps += [{"id": f"p{i}", "action": "noop", "needs": ["start"]} for i in range(12)]
    steps.append({"id": "join", "action": "noop", "needs": [f"p{i}" for i in (7, 0, 11, 3, 1, 2, 4, 5, 6, 8, 9, 10)]})
    version = make_runbook("fan-out", steps=steps)
    make_runbook("other", steps=[{"id": "start", "action": "noop"}, {"id": "p1", "action": "noop", "needs": ["start"]}])
    with django_assert_num_queries(2):
        specs = graph.build_runbook_steps(version)
    needs = {s.step_key: s.needs for s in specs}
    assert needs["start"] == []
    assert needs["p5"] == ["start"]
    assert needs["join"] == [f"p{i}" for i in range(12)]
    assert [s.step_key for s in specs] == ["start", *(f"p{i}" for i in range(12)), "join"]


def test_three_app_plan_composes_cross_runbook_edges():
    plan, _ = three_app_plan()
    specs = {s.step_key: s for s in graph.build_plan_steps(plan, "failover")}
    assert sorted(specs) == sorted(
        f"{app}.{step}" for app in ("shop-db", "shop-api", "shop-web") for step in ("stop", "promote", "check")
    )
    # api's root waits for db's leaf; web's root for api's leaf (not db's: that is implied).
    assert specs["shop-db.stop"].needs == []
    assert specs["shop-api.stop"].needs == ["shop-db.check"]
    assert specs["shop-web.stop"].needs == ["shop-api.check"]
    assert specs["shop-api.promote"].needs == ["shop-api.stop"]
    assert {k: s.tier for k, s in specs.items() if k.endswith(".stop")} == {
        "shop-db.stop": 3,
        "shop-api.stop": 2,
        "shop-web.stop": 1,
    }


def test_dependencies_outside_the_plan_are_looked_through():
    db = make_app("db", tier=3)
    middle = make_app("middle", depends_on=(db,))  # not in the plan
    web = make_app("web", tier=1, depends_on=(middle,))
    make_runbook("db-fo", application="db")
    make_runbook("web-fo", application="web")
    make_runbook("middle-fo", application="middle")
    plan = make_plan("p", status="active", applications=[db, web])
    specs = {s.step_key: s for s in graph.build_plan_steps(plan, "failover")}
    assert "middle.stop" not in specs
    assert specs["web.stop"].needs == ["db.check"]


def test_several_runbooks_of_one_application_get_their_slug_in_the_key():
    db = make_app("db")
    make_runbook("db-a", application="db")
    make_runbook("db-b", application="db")
    plan = make_plan("p", applications=[db])
    keys = {s.step_key for s in graph.build_plan_steps(plan, "failover")}
    assert "db.db-a.stop" in keys and "db.db-b.check" in keys


def test_plan_without_runbooks_or_approvals_is_refused_by_name():
    db = make_app("db")
    plan = make_plan("empty-dr", applications=[db])
    with pytest.raises(Conflict, match="plan 'empty-dr' has no failover runbook"):
        graph.build_plan_steps(plan, "failover")
    make_runbook("db-fo", application="db", approved=False)
    with pytest.raises(Conflict, match="runbook 'db-fo' has no approved version"):
        graph.build_plan_steps(plan, "failover")
    # a dry run may take the latest version
    assert len(graph.build_plan_steps(plan, "failover", include_unapproved=True)) == 3


def test_tier_one_work_goes_first_then_the_longest_remaining_path():
    specs = [
        StepSpec("t3", "t3", "noop", tier=3, estimated_duration_seconds=500),
        StepSpec("t1", "t1", "noop", tier=1, estimated_duration_seconds=1),
        StepSpec("short", "short", "noop", tier=2, estimated_duration_seconds=10),
        StepSpec("long", "long", "noop", tier=2, estimated_duration_seconds=10),
        StepSpec("long-tail", "long-tail", "noop", needs=["long"], tier=2, estimated_duration_seconds=60),
    ]
    graph.assign_priorities(specs)
    prio = {s.step_key: s.priority for s in specs}
    assert prio["t1"] > prio["long"] > prio["short"] > prio["t3"]
    assert prio["long"] - prio["short"] == 60  # remaining critical path 70 s vs 10 s


def test_a_dependency_of_tier_one_work_inherits_its_priority():
    plan, _ = three_app_plan()
    specs = graph.assign_priorities(graph.build_plan_steps(plan, "failover"))
    prio = {s.step_key: s.priority for s in specs}
    unrelated = StepSpec("other", "other", "noop", tier=3)
    graph.assign_priorities([unrelated])
    # the tier-3 database is on the tier-1 web's path: it outranks unrelated tier-3 work
    assert prio["shop-db.stop"] > unrelated.priority
    # along one chain the remaining critical path decides
    assert prio["shop-db.stop"] > prio["shop-api.stop"] > prio["shop-web.stop"] > prio["shop-web.check"]


def test_cycles_and_unknown_needs_are_rejected():
    with pytest.raises(InvalidInput, match="cycle"):
        graph.topological_order([StepSpec("a", "a", "noop", needs=["b"]), StepSpec("b", "b", "noop", needs=["a"])])
    with pytest.raises(InvalidInput, match="unknown step 'zz'"):
        graph.topological_order([StepSpec("a", "a", "noop", needs=["zz"])])
    with pytest.raises(InvalidInput, match="appears twice"):
        graph.topological_order([StepSpec("a", "a", "noop"), StepSpec("a", "a", "noop")])


def test_create_step_runs_stores_the_definition_in_dependency_order():
    plan, _ = three_app_plan()
    execution = make_execution(plan, status="pending")
    rows = graph.create_step_runs(execution, graph.build_plan_steps(plan, "failover"))
    stored = list(execution.step_runs.order_by("id"))
    assert [r.step_key for r in stored] == [r.step_key for r in rows]
    assert stored[0].step_key == "shop-db.stop"
    web_stop = next(r for r in stored if r.step_key == "shop-web.stop")
    assert (web_stop.needs, web_stop.tier, web_stop.status, web_stop.action) == (
        ["shop-api.check"],
        1,
        "pending",
        "noop",
    )
    assert web_stop.runbook_step_id is not None and web_stop.priority > 0
