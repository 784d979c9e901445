"""Every example step in docs/actions.md validates against its action's schema, so docs and schemas
cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from runbooks.actions import get_action

DOC = Path(__file__).resolve().parents[2] / "docs" / "actions.md"


def test_documented_example_steps_match_their_schemas() -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), flags=re.S)
    steps = [step for block in blocks for step in yaml.safe_load(block) or [] if isinstance(step, dict)]
    documented = {step["action"] for step in steps}
    assert {"redis.replication_status", "redis.promote", "redis.replicaof", "redis.failover", "ssh.run"}
    assert {"haproxy.set_weight", "haproxy.set_state", "haproxy.server_status"} <= documented
    assert (
        {"mariadb.replication_status", "mariadb.set_read_only", "mariadb.promote", "mariadb.check_writable"}
        <= documented
        <= documented
    )
    for step in steps:
        spec = get_action(step["action"])
        assert spec is not None, step["action"]
        errors = [error.message for error in spec.validator.iter_errors(step.get("with", {}))]
        assert errors == [], (step["id"], errors)
