"""The runbook shown in the README imports as it stands, so the README stays true."""

import re
from pathlib import Path

import pytest

from runbooks import services
from runbooks.models import RunbookStep

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.django_db
def test_readme_runbook_example_imports(applications):
    example = re.search(r"```yaml\n(name: .*?)```", README.read_text(), re.DOTALL)
    assert example, "README has a YAML runbook example"
    version = services.import_runbook_text(example.group(1), fmt="yaml")
    steps = RunbookStep.objects.filter(version=version).order_by("number")
    assert [s.step_id for s in steps] == ["check-lag", "promote", "confirm-dns"]
    assert [n.step_id for n in steps[1].needs.all()] == ["check-lag"]
