"""A lookup is by numeric id or by natural key, never guessed (issue 8): natural keys are never all digits,
so "3" can only ever be the row with id 3 — never a plan whose plan_id is "3" that fails over instead."""

from __future__ import annotations

import pytest

from core.lookups import find, lookup_kwargs
from failover.models import FailoverExecution
from failover.tests.engine_factories import three_app_plan
from plans.models import Application, DRPlan, Site
from plans.tests.factories import make_plan

pytestmark = pytest.mark.django_db
API = "/api/v1/dr"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("plans", {"plan_id": "3", "name": "Three", "rto_seconds": 60, "rpo_seconds": 0}, "plan_id"),
        ("sites", {"code": "1", "name": "One"}, "code"),
        ("applications", {"slug": "2026", "name": "Year"}, "slug"),
    ],
)
def test_natural_keys_are_never_all_digits(path, body, field, api_for):
    counts = (DRPlan.objects.count(), Site.objects.count(), Application.objects.count())
    response = api_for("approver").post(f"{API}/{path}", body, format="json")
    assert response.status_code == 400, response.content
    assert f"{body[field]!r} is all digits" in response.json()["error"]["fields"][field][0]
    assert (DRPlan.objects.count(), Site.objects.count(), Application.objects.count()) == counts


def test_a_plan_is_found_by_its_id_or_its_plan_id_and_nothing_else(users, api_for):
    target, _ = three_app_plan("shop-dr")
    other = make_plan("crm-dr", status="active")
    client = api_for("operator")
    for ref in (target.pk, str(target.pk), "shop-dr"):
        response = client.post(f"{API}/failover/validate", {"plan": ref}, format="json")
        assert response.status_code == 200, (ref, response.content)
    assert client.get(f"{API}/plans/{other.pk}").json()["plan_id"] == "crm-dr"
    assert client.get(f"{API}/plans/crm-dr").json()["id"] == other.pk
    # ids that do not exist, are out of range, or only look like digits: 404 / 400, never a 500 or another plan
    for ref in ("99999", "99999999999999999999999", "²", "٣"):
        assert client.get(f"{API}/plans/{ref}").status_code == 404, ref
        response = client.post(f"{API}/failover", {"plan": ref}, format="json")
        assert response.status_code == 400, (ref, response.content)
        assert response.json()["error"]["fields"]["plan"] == [f"no plan {ref!r}"]
    assert client.get(f"{API}/failover/status?id=99999999999999999999999").status_code == 400
    assert client.get(f"{API}/executions/99999999999999999999999").status_code == 404
    assert FailoverExecution.objects.count() == 0


def test_lookup_rule():
    assert lookup_kwargs(3, "plan_id") == {"pk": 3}
    assert lookup_kwargs(" 3 ", "plan_id") == {"pk": 3}
    assert lookup_kwargs("crm-dr", "plan_id") == {"plan_id": "crm-dr"}
    assert lookup_kwargs("3a", "plan_id") == {"plan_id": "3a"}
    assert lookup_kwargs("0", "plan_id") == {"pk__in": []}
    assert lookup_kwargs(str(2**64), "plan_id") == {"pk__in": []}
    assert find(DRPlan.objects.all(), "²", "plan_id") is None
