"""The critical path and estimated total duration (runbooks.selectors.critical_path) and its JS twin."""

from __future__ import annotations

import json
import shutil
import subprocess
from itertools import pairwise
from pathlib import Path

import pytest

from core.exceptions import InvalidInput
from runbooks.selectors import critical_path

JS_MODULE = Path(__file__).resolve().parents[1] / "static" / "runbooks" / "critical_path.js"


def step(step_id: str, needs: tuple[str, ...] = (), duration: object = None) -> dict:
    return {"id": step_id, "action": "noop", "needs": list(needs), "estimated_duration": duration}


CASES = [
    pytest.param({"steps": []}, ([], 0), id="empty"),
    pytest.param({"steps": [step("a", (), 30)]}, (["a"], 30), id="single"),
    pytest.param(
        {"steps": [step("a", (), "1m"), step("b", ("a",), 30), step("c", ("a",), "2m"), step("d", ("b", "c"), 10)]},
        (["a", "c", "d"], 60 + 120 + 10),
        id="diamond takes the longer branch",
    ),
    pytest.param(
        {"steps": [step("a", (), "1h30m"), step("b", (), "1h"), step("c", ("b",), "45m")]},
        (["b", "c"], 3600 + 2700),
        id="parallel chains: the longer total wins over the longer single step",
    ),
    pytest.param(
        {"steps": [step("a"), step("b", ("a",)), step("c"), step("d", ("b",))]},
        (["a", "b", "d"], 0),
        id="no estimates: the chain with most steps",
    ),
    pytest.param(
        {"steps": [step("x", (), 60), step("y", (), 60)]},
        (["x"], 60),
        id="tie: the earlier step in the document",
    ),
    pytest.param(
        {"steps": [step("a", (), 120), step("b", ("a", "ghost", "b"), "bad"), step("c", ("a",), 5)]},
        (["a", "c"], 125),
        id="unknown needs, self-needs and invalid durations are ignored",
    ),
    pytest.param(
        {"steps": [step("late", ("early",), 10), step("early", (), 20)]},
        (["early", "late"], 30),
        id="document order does not have to be dependency order",
    ),
]


@pytest.mark.parametrize(("doc", "expected"), CASES)
def test_critical_path(doc: dict, expected: tuple[list[str], int]) -> None:
    assert critical_path(doc) == expected


def test_a_cycle_is_refused_naming_its_steps() -> None:
    doc = {"steps": [step("a", ("c",)), step("b", ("a",)), step("c", ("b",)), step("d")]}
    with pytest.raises(InvalidInput, match=r"cycle through a, b, c$") as caught:
        critical_path(doc)
    assert caught.value.field == "steps"


def test_the_lab_failover_template_has_a_positive_total() -> None:
    from runbooks import documents, library

    doc = library.document_of(Path(__file__).resolve().parents[1] / "templates" / "orders-db-failover.yaml")
    steps, seconds = critical_path(doc)
    assert steps and set(steps) <= {s["id"] for s in doc["steps"]}
    # Every step on the path needs the one before it.
    needs = {s["id"]: set(s.get("needs", [])) for s in doc["steps"]}
    assert needs[steps[0]] == set()
    assert all(before in needs[after] for before, after in pairwise(steps))
    by_id = {s["id"]: s for s in doc["steps"]}
    assert seconds == sum(documents.parse_duration(by_id[s].get("estimated_duration")) or 0 for s in steps) > 0


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_javascript_twin_agrees_on_every_case() -> None:
    docs = [case.values[0] for case in CASES]
    cycle = {"steps": [step("a", ("b",)), step("b", ("a",))]}
    script = (
        f"const cp = require({json.dumps(str(JS_MODULE))});"
        "const docs = JSON.parse(process.argv[1]);"
        "const out = docs.map(d => { try { const r = cp.criticalPath(d); return [r.steps, r.seconds]; }"
        " catch (e) { return ['error', e.message]; } });"
        "process.stdout.write(JSON.stringify(out));"
    )
    result = subprocess.run(
        ["node", "-e", script, json.dumps([*docs, cycle])], capture_output=True, text=True, timeout=30, check=True
    )
    outputs = json.loads(result.stdout)
    assert outputs[:-1] == [list(case.values[1]) for case in CASES]
    assert outputs[-1] == ["error", "the steps' needs form a cycle through a, b"]
