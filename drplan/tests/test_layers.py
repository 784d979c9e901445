"""The apps import one way only (docs/architecture.md, "Layers"): a walk over every import statement of
the application code, top-level and deferred alike, fails naming the file, the line and the rule broken.

Tests are not walked: a test of a lower layer may set up what a higher one would (a failover test
may look at the DR test result analytics recorded)."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)

# Which app may import which (besides itself). The project (drplan/) wires everything together.
ALLOWED = {
    "core": set(),
    "plans": {"core"},
    "runbooks": {"core", "plans"},
    "failover": {"core", "plans", "runbooks"},
    "analytics": {"core", "plans", "runbooks", "failover"},
    "mlservice": {"core", "plans", "runbooks", "failover", "analytics"},
    "compliance": {"core", "plans", "runbooks", "failover", "analytics"},
    "lab": {"core", "plans", "runbooks", "failover"},
    "drplan": {"core", "plans", "runbooks", "failover", "analytics", "mlservice", "compliance", "lab"},
}
# Reads against the grain, each for a reason the architecture document gives.
EXCEPTIONS = {
    # A plan's list shows its test statistics (last test, success rate, average RTO/RPO), computed from
    # analytics' test results in the same query; analytics' modules never import plans.selectors' callers.
    ("plans/selectors.py", "analytics"),
}
# The engine (failover/engine/) runs executions; of failover it may import only itself, the models and
# the choices, never the use cases above it (services, approvals, controls, common, tasks, ...).
ENGINE = "failover/engine/"
ENGINE_MAY_IMPORT = ("failover.engine", "failover.models", "failover.choices")


def _sources() -> Iterator[tuple[str, Path]]:
    for app in ALLOWED:
        for path in sorted((ROOT / app).rglob("*.py")):
            relative = path.relative_to(ROOT)
            if not {"tests", "migrations"} & set(relative.parts):
                yield app, path


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.lineno, node.module
            for alias in node.names:  # `from failover import services` imports failover.services
                yield node.lineno, f"{node.module}.{alias.name}"


def layering_violations() -> list[str]:
    found = []
    for app, path in _sources():
        relative = path.relative_to(ROOT).as_posix()
        for line, module in _imports(path):
            target = module.split(".")[0]
            across = target in ALLOWED and target not in {app, *ALLOWED[app]}
            if across and (relative, target) not in EXCEPTIONS:
                found.append(f"{relative}:{line} imports {module}: {app} may not import {target}")
            # (`from failover import services` yields both failover and failover.services: judge the latter)
            upward = module != "failover" and not module.startswith(ENGINE_MAY_IMPORT)
            if relative.startswith(ENGINE) and target == "failover" and upward:
                found.append(f"{relative}:{line} imports {module}: the engine may not import failover's use cases")
    return sorted(set(found))


def test_every_app_imports_only_the_layers_below_it():
    assert layering_violations() == []


def test_the_walk_sees_deferred_imports_and_names_the_broken_rule(tmp_path, monkeypatch):
    """The test above can fail: a deferred import of the use cases from the engine is caught."""
    engine = tmp_path / "failover" / "engine"
    engine.mkdir(parents=True)
    (engine / "runner.py").write_text("def finish():\n    from failover import services\n    return services\n")
    (tmp_path / "runbooks").mkdir()
    (tmp_path / "runbooks" / "views.py").write_text("from failover.api.views import execution_response\n")
    (tmp_path / "plans").mkdir()
    (tmp_path / "plans" / "selectors.py").write_text("from analytics.models import DRTestResult\n")
    monkeypatch.setattr(f"{__name__}.ROOT", tmp_path)
    assert layering_violations() == [
        "failover/engine/runner.py:2 imports failover.services: the engine may not import failover's use cases",
        "runbooks/views.py:1 imports failover.api.views.execution_response: runbooks may not import failover",
        "runbooks/views.py:1 imports failover.api.views: runbooks may not import failover",
    ]
