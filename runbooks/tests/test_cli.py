"""`manage.py runbook import|export`."""

from __future__ import annotations

import json
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command

from core.models import AuditEntry
from runbooks import documents, library
from runbooks.models import RunbookVersion
from runbooks.tests.factories import row_counts

LIBRARY_FILE = Path(__file__).resolve().parent.parent / "templates" / "orders-db-failover.yaml"


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """The library file as a plain runbook document (its `template:` block taken off by the library)."""
    path = tmp_path / "orders-db-failover.yaml"
    path.write_text(library.document_text(LIBRARY_FILE))
    return path


def run(*args: str) -> str:
    out = StringIO()
    call_command("runbook", *args, stdout=out)
    return out.getvalue()


def test_import_then_export(applications, tmp_path: Path, template: Path) -> None:
    output = run("import", str(template))
    version = RunbookVersion.objects.get()
    rid = version.runbook_id
    assert output.strip() == f"Imported: runbook orders-db-failover (id {rid}) version 1.0.0 [draft]"
    entry = AuditEntry.objects.get(action="import")
    assert entry.auth_method == "cli"
    assert json.loads(run("import", str(template), "--json")) == {
        "runbook": {"id": rid, "slug": "orders-db-failover", "name": "Orders database failover"},
        "version": {"id": version.pk, "version": "1.0.0", "status": "draft"},
        "created": False,
        "content_hash": documents.content_hash(documents.normalise(yaml.safe_load(template.read_text()))),
    }
    expected = documents.normalise(yaml.safe_load(template.read_text()))
    assert yaml.safe_load(run("export", "orders-db-failover")) == expected
    assert json.loads(run("export", str(rid), "--format", "json", "--version", "1.0.0")) == expected

    # A JSON file (detected by extension) round-trips too.
    path = tmp_path / "copy.json"
    path.write_text(json.dumps({**expected, "slug": "orders-copy"}))
    assert "runbook orders-copy" in run("import", str(path))


def test_import_user_is_the_author(applications, users, template: Path) -> None:
    run("import", str(template), "--user", "approver")
    assert AuditEntry.objects.get(action="import").actor_username == "approver"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name: x\n  bad: [\n", "document: invalid YAML at line 2"),
        ("name: x\nversion: 1.0.0\nsteps:\n  - {id: a, action: shell, with: {argv: ls}}\n", "must be a list"),
    ],
)
def test_import_errors_are_command_errors(db, tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    with pytest.raises(CommandError, match=message):
        run("import", str(path))
    assert row_counts() == (0, 0, 0, 0, 0)


def test_missing_file_and_unknown_runbook(db) -> None:
    with pytest.raises(CommandError, match=r"cannot read /nonexistent\.yaml"):
        run("import", "/nonexistent.yaml")
    with pytest.raises(CommandError, match="No runbook 'nope'"):
        run("export", "nope")


def test_exit_code_and_no_traceback(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: [\n")
    result = subprocess.run(
        [sys.executable, "manage.py", "runbook", "import", str(path)],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={"DRPLAN_SQLITE_PATH": str(tmp_path / "cli.sqlite3"), "PATH": "/usr/bin:/bin"},
        check=False,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "CommandError: document: invalid YAML at line 2" in result.stderr


def test_a_library_file_imports_as_it_is_and_its_block_is_checked(applications, tmp_path: Path) -> None:
    """`runbook import runbooks/templates/X.yaml` (the README's example): the `template:` block is the library's
    record, not part of the runbook; a bad block is refused naming its key, and nothing is stored."""
    output = run("import", str(LIBRARY_FILE))
    version = RunbookVersion.objects.get()
    assert output.strip().startswith("Imported: runbook orders-db-failover")
    assert version.content_hash == documents.content_hash(documents.normalise(library.document_of(LIBRARY_FILE)))

    broken = yaml.safe_load(LIBRARY_FILE.read_text())
    broken["slug"] = "orders-db-failover-broken"
    broken["template"]["strategy"] = "teleport"
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(broken, sort_keys=False))
    with pytest.raises(CommandError, match=r"broken.yaml: template.strategy: must be one of .*not 'teleport'"):
        run("import", str(path))
    assert RunbookVersion.objects.count() == 1
