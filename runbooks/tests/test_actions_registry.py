"""The action registry checks each action's parameter schema against the JSON Schema meta-schema on first
use (runbooks.actions.ActionSpec.validator), not when the action registers: here every registered schema is
checked, so a broken one still fails the suite rather than the first runbook that uses it."""

from __future__ import annotations

import pytest
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from runbooks.actions import ActionSpec, action_names, get_action


@pytest.mark.parametrize("name", action_names())
def test_every_registered_schema_is_a_valid_json_schema(name: str) -> None:
    spec = get_action(name)
    Draft202012Validator.check_schema(spec.params_schema)
    assert isinstance(spec.validator, Draft202012Validator)
    assert spec.validator is spec.validator  # built once


def test_a_broken_schema_is_refused_on_first_use() -> None:
    spec = ActionSpec("broken", "A schema that is not one.", {"type": "no-such-type"})
    with pytest.raises(SchemaError):
        _ = spec.validator
