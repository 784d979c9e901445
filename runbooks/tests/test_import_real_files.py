"""Every real document in ../shared/data/runbooks (and the copies in data/import) imports as a draft version with
its provenance and report: step counts and actions, dependencies, parameters and the report's summary."""

from __future__ import annotations

import hashlib

import pytest

from core.models import AuditEntry
from plans.models import Application
from runbooks.importers.service import import_file
from runbooks.models import RunbookImport, RunbookVersion
from runbooks.tests.import_support import EXPECTED, copied_files, read, real_files

pytestmark = pytest.mark.django_db


def check_import(name: str, text: str, filename: str) -> RunbookVersion:
    expected = EXPECTED[name]
    result = import_file(text, filename=filename)
    version = result.version
    assert (result.format, result.created, version.status) == (expected["format"], True, "draft")
    assert version.category == expected["category"]
    assert version.version.startswith("1.0.0-import.")
    steps = list(version.steps.order_by("number").prefetch_related("needs"))
    assert [s.action for s in steps] == expected["actions"]
    ids = [s.step_id for s in steps]
    needs = {s.step_id: [n.step_id for n in s.needs.all()] for s in steps}
    for index, step_id in enumerate(ids):
        wanted = expected.get("needs", {}).get(step_id, [ids[index - 1]] if index else [])
        assert needs[step_id] == wanted, step_id
    params = {p.name: p.default is None for p in version.parameters.all()}
    assert params == expected["params"]
    # provenance: the original byte for byte, its hash, the report
    record = RunbookImport.objects.get(version=version)
    assert record.original == text
    assert record.original_sha256 == hashlib.sha256(text.encode()).hexdigest()
    assert (record.source_format, record.filename) == (expected["format"], filename)
    report = record.report
    assert report == result.report
    assert report["summary"] == expected["summary"]
    assert sum(report["summary"].values()) == len(report["entries"])
    for entry in report["entries"]:
        assert entry["step"] is None or entry["step"] in ids
        assert entry["detail"]
    # every manual step says what to do; every step that came from the source is in the report
    reported = {e["step"] for e in report["entries"] if e["step"]}
    for step in steps:
        if step.action == "manual":
            assert step.params["instructions"].strip()
        if step.action not in ("wait",):
            assert step.step_id in reported, step.step_id
    assert AuditEntry.objects.filter(action="import", object_type="runbooks.runbookimport").count() == 1
    return version


@pytest.mark.parametrize("name", real_files())
def test_real_file_imports_with_its_report(name: str) -> None:
    text, filename = read(name)
    check_import(name, text, filename)


@pytest.mark.parametrize("name", copied_files())
def test_copied_real_file_imports_with_its_report(name: str) -> None:
    text, filename = read(name, copied=True)
    check_import(name, text, filename)


@pytest.mark.parametrize("name", real_files())
def test_importing_the_same_file_again_finds_its_version(name: str) -> None:
    text, filename = read(name)
    first = import_file(text, filename=filename)
    again = import_file(text, filename=filename)
    assert (again.version.pk, again.created, again.report) == (first.version.pk, False, first.report)
    assert RunbookVersion.objects.count() == RunbookImport.objects.count() == 1


def test_asr_plan_creates_or_matches_applications_and_orders_groups() -> None:
    name = "azure-site-recovery/ReplicationRecoveryPlans_Get.json"
    text, filename = read(name, copied=True)
    existing = Application.objects.create(slug="first-vm", name="F8491E4F-817A-40DD-A90C-AF773978C75B", tier=3)
    version = import_file(text, filename=filename).version
    created = Application.objects.exclude(pk=existing.pk).get()
    assert (created.slug, created.tier) == ("c0c14913-3d7a-48ea-9531-cc99e0e686e6", 2)  # the second boot group
    entries = RunbookImport.objects.get(version=version).report["entries"]
    assert any("application 'first-vm' matched by name" in e["detail"] for e in entries)
    first, second = version.steps.order_by("number")
    assert "f8491e4f-817a-40dd-a90c-af773978c75b" in first.params["instructions"]
    assert [n.step_id for n in second.needs.all()] == [first.step_id]
