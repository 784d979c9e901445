"""The lab sits on top: nothing in plans/, runbooks/, failover/ or core/ imports it (an AST walk)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("app", ["core", "plans", "runbooks", "failover"])
def test_no_app_below_the_lab_imports_it(app: str) -> None:
    offenders = []
    for path in sorted((ROOT / app).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [f"{path.relative_to(ROOT)}:{node.lineno} {n}" for n in names if n.split(".")[0] == "lab"]
    assert offenders == []
