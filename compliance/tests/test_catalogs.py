"""Framework catalogs as data: every file is well formed, loading is idempotent, and the NIST text and the ISO
clause outline agree with the public sources in ../shared (read there only; skipped when it is absent)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import call_command

from compliance.catalogs import catalog_files, load_catalogs, read_catalog
from compliance.catalogs.oscal import cp_controls
from compliance.models import Framework, Requirement
from compliance.rules import RULES
from core.models import AuditEntry
from plans.choices import ComplianceFramework

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "compliance"
OSCAL_CP = SHARED / "nist-800-53-oscal" / "NIST_SP-800-53_rev5_CP-family-extract_v5.0.1.json"
CISO_ISO = SHARED / "ciso-assistant" / "iso22301-2019.yaml"


def test_one_catalog_per_framework_each_with_source_and_licence() -> None:
    catalogs = {read_catalog(p)["framework"]["code"]: read_catalog(p) for p in catalog_files()}
    assert set(catalogs) == set(ComplianceFramework.values)
    for code, catalog in catalogs.items():
        spec = catalog["framework"]
        assert spec["source"].strip() and spec["licence"].strip(), code
        assert any(r["rules"] for r in catalog["requirements"]), code
    used = {rule for c in catalogs.values() for r in c["requirements"] for rule in r["rules"]}
    assert used == set(RULES), f"rules no catalog uses: {set(RULES) - used}"


def test_catalog_contents() -> None:
    refs = {
        read_catalog(p)["framework"]["code"]: [r["ref"] for r in read_catalog(p)["requirements"]]
        for p in catalog_files()
    }
    assert refs["nist_800_53"] == [f"CP-{n}" for n in range(1, 14)]
    assert refs["hipaa"] == ["164.308(a)(7)(i)"] + [f"164.308(a)(7)(ii)({x})" for x in "ABCDE"]
    assert refs["pci_dss"][:2] == ["12.10", "12.10.1"] and "12.10.7" in refs["pci_dss"]
    assert {"Art. 11(1)", "Art. 11(6)", "Art. 12(1)", "Art. 12(7)"} <= set(refs["dora"])
    assert {"8.4.5", "8.5", "8.6", "9.1", "10.2"} <= set(refs["iso_22301"])
    assert all(r.startswith("ITGC-") for r in refs["sox"])


def test_iso_catalog_holds_numbers_and_titles_only() -> None:
    catalog = read_catalog(Path(catalog_files()[0]).with_name("iso_22301.yaml"))
    assert all(r["text"] == "" for r in catalog["requirements"])


@pytest.mark.django_db
def test_load_is_idempotent_and_audited() -> None:
    first = load_catalogs()
    assert all(c["created"] > 0 for c in first.values())
    entries = AuditEntry.objects.count()
    assert Framework.objects.count() == len(ComplianceFramework.values)
    assert load_catalogs() == {code: {"created": 0, "updated": 0, "removed": 0} for code in first}
    assert AuditEntry.objects.count() == entries

    cp4 = Requirement.objects.get(framework__code="nist_800_53", ref="CP-4")
    assert cp4.title == "Contingency Plan Testing"
    assert cp4.rules == ["tests_per_cadence", "lessons_recorded", "findings_have_actions"]
    Requirement.objects.filter(pk=cp4.pk).update(title="edited behind our back")
    assert load_catalogs()["nist_800_53"] == {"created": 0, "updated": 1, "removed": 0}
    cp4.refresh_from_db()
    assert cp4.title == "Contingency Plan Testing"


@pytest.mark.django_db
def test_load_command(capsys: pytest.CaptureFixture[str]) -> None:
    call_command("compliance", "load")
    # the framework and its 13 controls
    assert "nist_800_53: 14 rows created, 0 updated, 0 removed" in capsys.readouterr().out
    call_command("compliance", "load")
    assert "hipaa: 0 rows created, 0 updated, 0 removed" in capsys.readouterr().out


@pytest.mark.skipif(not OSCAL_CP.exists(), reason="../shared/data/compliance is not here")
def test_nist_text_is_the_oscal_catalogs() -> None:
    _, controls = cp_controls(OSCAL_CP)
    ours = {r["ref"]: r for r in read_catalog(Path(catalog_files()[0]).with_name("nist_800_53.yaml"))["requirements"]}
    expected = {c["ref"]: c for c in controls if not c["withdrawn"]}
    withdrawn = {c["ref"] for c in controls if c["withdrawn"]}
    assert set(ours) == set(expected) | withdrawn
    assert all(ours[ref]["note"].startswith("Withdrawn") and not ours[ref]["rules"] for ref in withdrawn)
    for ref, control in expected.items():
        assert (ours[ref]["title"], ours[ref]["text"]) == (control["title"], control["text"]), ref


@pytest.mark.skipif(not CISO_ISO.exists(), reason="../shared/data/compliance is not here")
def test_iso_clause_numbers_agree_with_a_public_outline() -> None:
    nodes = yaml.safe_load(CISO_ISO.read_text())["objects"]["framework"]["requirement_nodes"]
    clauses = {str(n["ref_id"]) for n in nodes if "ref_id" in n}
    ours = {r["ref"] for r in read_catalog(Path(catalog_files()[0]).with_name("iso_22301.yaml"))["requirements"]}
    assert ours <= clauses, sorted(ours - clauses)
