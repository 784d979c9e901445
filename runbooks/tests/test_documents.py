"""Round trips of every template, hashing, and document error messages."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.exceptions import InvalidInput
from runbooks import actions, documents, library, services

TEMPLATES = sorted((Path(__file__).resolve().parent.parent / "templates").glob("*.yaml"))


def test_there_are_the_demo_and_the_lab_templates() -> None:
    slugs = {template.slug for template in library.all_templates()}
    assert len(slugs) == len(TEMPLATES)
    # the demo organisation's and the generic PostgreSQL/Redis ones the DR lab runs
    assert {"orders-db-failover", "postgres-failover", "postgres-failback", "redis-failover"} <= slugs


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_template_round_trip_yaml_and_json(path: Path, applications: dict) -> None:
    text = library.document_text(path)  # without the library's `template:` block
    expected = documents.normalise(documents.parse_document(text))
    version = services.import_runbook_text(text)
    assert version.content_hash == documents.content_hash(expected)
    assert documents.document_from_version(version) == expected

    for fmt in ("yaml", "json"):
        exported = services.export_version(version, fmt)
        reparsed = documents.parse_document(exported, fmt)
        assert reparsed == expected
        assert documents.normalise(reparsed) == expected
        assert documents.content_hash(documents.normalise(reparsed)) == version.content_hash
        # Re-importing the export is idempotent: same version row, nothing new.
        again = services.import_runbook_text(exported, fmt=fmt)
        assert again.pk == version.pk
        assert again.was_created is False

    # The JSON form imports as a fresh runbook with the same content hash.
    json_doc = {**expected, "slug": expected["slug"] + "-json"}
    copy = services.import_runbook_text(json.dumps(json_doc), fmt="json")
    assert documents.document_from_version(copy) == json_doc
    assert copy.content_hash == documents.content_hash(json_doc)


def test_normalise_fills_defaults_and_converts_durations(make_doc) -> None:
    doc = make_doc(name="Orders DB Failover")
    del doc["slug"]
    doc["steps"].append({"id": "ask", "action": "manual", "with": {"instructions": "Call the DBA"}, "timeout": "1h"})
    canonical = documents.normalise(doc)
    assert canonical["slug"] == "orders-db-failover"
    assert canonical["category"] == "failover"
    assert canonical["parameters"]["host"] == {
        "type": "string",
        "default": "db.example.internal",
        "secret": False,
        "description": "",
    }
    validate = canonical["steps"][2]
    assert validate["timeout"] == 90
    assert validate["title"] == "validate"
    assert validate["retries"] == 0 and validate["rollback"] is None and validate["automated"] is True
    assert canonical["steps"][3]["automated"] is False  # manual steps default to not automated
    assert canonical["steps"][3]["timeout"] == 3600


def test_content_hash_is_sha256_of_sorted_compact_json() -> None:
    import hashlib

    doc = {"b": 1, "a": [1, {"d": 2, "c": "é"}]}
    expected = hashlib.sha256('{"a":[1,{"c":"é","d":2}],"b":1}'.encode()).hexdigest()
    assert documents.content_hash(doc) == expected


def errors_of(doc_or_text, fmt: str | None = None) -> str:
    with pytest.raises(InvalidInput) as info:
        doc = documents.parse_document(doc_or_text, fmt) if isinstance(doc_or_text, str) else doc_or_text
        documents.normalise(doc)
    return info.value.message


def test_malformed_yaml_reports_line_and_column() -> None:
    message = errors_of("name: x\nsteps:\n  - id: a\n   action: noop\n")
    assert message.startswith("document: invalid YAML at line 4, column")


def test_malformed_json_reports_line_and_column() -> None:
    message = errors_of('{\n  "name": "x",\n  "version" "1.0.0"\n}', "json")
    assert message == "document: invalid JSON at line 3, column 13: Expecting ':' delimiter"


def test_yaml_aliases_are_refused() -> None:
    assert "aliases" in errors_of("a: &x [1, 2]\nb: *x\n")


def test_top_level_must_be_a_mapping() -> None:
    assert errors_of("- a\n- b\n") == "document: a runbook document must be a mapping (object) at the top level"


def test_yaml_dates_must_be_quoted(make_doc) -> None:
    doc = make_doc()
    doc["steps"][0]["with"]["host"] = __import__("datetime").date(2024, 1, 1)
    assert errors_of(doc) == "steps[0].with.host: a date value is not allowed; quote it as a string"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["steps"][1].update(timeout="abc"), "steps[1] (promote).timeout: 'abc' is not a valid duration"),
        (lambda d: d["steps"][1].update(foo=1), "steps[1] (promote).foo: unknown field (allowed:"),
        (lambda d: d.update(owner="me"), "owner: unknown field (allowed:"),
        (lambda d: d["steps"][0].update(retries="3"), "steps[0] (check).retries: '3' is not of type 'integer'"),
        (lambda d: d.update(version="1.0"), "version: '1.0' is not a semantic version"),
        (lambda d: d["steps"][1].pop("action"), "steps[1] (promote).action: this field is required"),
        (lambda d: d.update(steps=[]), "steps: [] should be non-empty"),
        (
            lambda d: d["steps"][1]["with"].update(argv="pg_ctl promote"),
            "steps[1] (promote).with.argv: 'pg_ctl promote' must be a list, not a string",
        ),
        (
            lambda d: d["steps"][1].update(action="ssh"),
            f"steps[1] (promote).action: unknown action 'ssh' (known: {', '.join(actions.action_names())})",
        ),
        (lambda d: d["steps"][2].update(id="check"), "steps[2] (check).id: duplicate step id 'check'"),
        (lambda d: d["steps"][2].update(needs=["nope"]), "steps[2] (validate).needs: unknown step 'nope'"),
        (
            lambda d: d["steps"][0]["with"].update(host="{{ params.hots }}"),
            "steps[0] (check).with.host: {{ params.hots }} refers to undeclared parameter 'hots' (declared: host)",
        ),
        (
            lambda d: d["steps"][1]["with"].update(argv=["echo", "{{ steps.validate.output }}"]),
            "steps[1] (promote).with.argv[1]: {{ steps.validate.output }} refers to step 'validate', "
            "which this step does not need",
        ),
        (
            lambda d: d["steps"][0].update(rollback={"action": "tcp", "with": {"host": "x"}}),
            "steps[0] (check).rollback.with.port: this field is required",
        ),
        (
            lambda d: d["parameters"].update(port={"type": "integer", "default": "5432"}),
            "parameters.port.default: '5432' is not of type 'integer'",
        ),
        (
            lambda d: d["parameters"].update(pw={"secret": True, "default": "hunter2"}),
            "parameters.pw.default: a secret parameter cannot have a default",
        ),
        (
            lambda d: d.update(approvals=[{"role": "approver"}, {"level": 1, "role": "admin"}]),
            "approvals[1].level: level 1 appears more than once",
        ),
        (lambda d: d["steps"][0].update(timeout="800h"), "steps[0] (check).timeout: '800h' is longer than 30 days"),
        (
            lambda d: d["steps"][2]["with"].update(headers={"Authorization": "Bearer {{ secrets.token | reverse }}"}),
            "steps[2] (validate).with.headers.Authorization: secrets.token can only be used whole, "
            "as {{ secrets.token }}: filters, slicing and expressions on secrets are not allowed",
        ),
        (
            lambda d: d["steps"][1].update(rollback={"action": "noop", "with": {"message": "{{ secrets.t[:4] }}"}}),
            "steps[1] (promote).rollback.with.message: secrets.t can only be used whole",
        ),
        (
            lambda d: d["steps"][1]["with"].update(argv=["echo", "{% set s = secrets %}{{ s.token }}"]),
            "steps[1] (promote).with.argv[1]: secrets can only be used whole, as {{ secrets.NAME }}",
        ),
        (
            lambda d: d["steps"][1]["with"].update(argv=["echo", "{% macro m() %}x{% endmacro %}{{ m() }}"]),
            "steps[1] (promote).with.argv[1]: {% macro %} is not allowed in a parameter template",
        ),
        (
            lambda d: d["steps"][0]["with"].update(host="{{ params.host | }}"),
            "steps[0] (check).with.host: template syntax error: ",
        ),
    ],
)
def test_invalid_documents_name_the_step_and_field(make_doc, mutate, expected: str) -> None:
    doc = make_doc()
    mutate(doc)
    assert expected in errors_of(doc)


def test_cycle_names_its_steps_in_order(make_doc) -> None:
    doc = make_doc()
    doc["steps"][0]["needs"] = ["validate"]
    assert errors_of(doc) == "steps: cycle: check -> validate -> promote -> check"


def test_step_may_reference_transitive_needs(make_doc) -> None:
    doc = make_doc()
    doc["steps"][2]["with"]["url"] = "https://{{ steps.check.output }}/{{ secrets.token }}/{{ plan.name }}"
    assert documents.normalise(doc)["steps"][2]["with"]["url"].startswith("https://{{ steps.check")


def test_action_registry() -> None:
    names = actions.action_names()
    assert [n for n in names if "." not in n] == ["http", "manual", "noop", "python", "shell", "sql", "tcp", "wait"]
    # The infrastructure actions, by family (runbooks/action_schemas/).
    families = {
        "ansible": ["ansible.playbook"],
        "haproxy": ["haproxy.server_status", "haproxy.set_state", "haproxy.set_weight"],
        "mariadb": [
            "mariadb.check_writable",
            "mariadb.promote",
            "mariadb.replication_status",
            "mariadb.set_read_only",
        ],
        "aws": ["aws.call", "aws.ec2_start", "aws.ec2_stop", "aws.rds_promote_read_replica", "aws.route53_failover"],
        "postgres": [
            "postgres.check_lag",
            "postgres.data_loss",
            "postgres.fence",
            "postgres.promote",
            "postgres.rebuild_standby",
            "postgres.replication_status",
            "postgres.rewind",
            "postgres.switchover",
            "postgres.wait_writable",
        ],
        "redis": ["redis.failover", "redis.promote", "redis.replicaof", "redis.replication_status"],
        "ssh": ["ssh.run"],
    }
    assert {family: [n for n in names if n.startswith(family + ".")] for family in families} == families
    assert all(n.split(".")[0] in families for n in names if "." in n)
    assert actions.get_action("shell").params_schema["required"] == ["argv"]
    assert actions.get_action("nope") is None
    with pytest.raises(ValueError, match="already registered"):
        actions.register_action(actions.ActionSpec("noop", "again", {"type": "object"}))


DEEP = 100_000


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        ("[" * DEEP + "]" * DEEP, "json"),
        ('{"a":' * DEEP + "1" + "}" * DEEP, "json"),
        ("[" * DEEP + "]" * DEEP, "yaml"),
        ("{a: " * DEEP + "1" + "}" * DEEP, "yaml"),
        ("name: x\nsteps: " + "[" * DEEP + "]" * DEEP, None),
        ("".join(f"{' ' * i}k{i}:\n" for i in range(70)) + " " * 70 + "v\n", "yaml"),
    ],
    ids=["json-array", "json-object", "yaml-flow-sequence", "yaml-flow-mapping", "detected-yaml", "yaml-block"],
)
def test_deep_nesting_is_refused_naming_the_limit(text: str, fmt: str | None) -> None:
    from core.jsondepth import MAX_JSON_DEPTH

    assert errors_of(text, fmt) == f"document: nested deeper than {MAX_JSON_DEPTH} levels (the limit)"


def test_yaml_alias_bombs_are_refused() -> None:
    lol = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
    )
    assert "YAML aliases (*name) are not supported in runbooks" in errors_of(lol)
