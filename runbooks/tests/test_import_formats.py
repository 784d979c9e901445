"""What each importer makes of the parts of its format that the real documents do not all show: Rundeck
strategies over several hosts, secure options, scripts, error handlers; Chaos Toolkit secrets and tolerances;
SSM approvals, sleeps, outputs, branches; ASR group actions; Ansible imports and task files. Conversions only
(nothing stored), each checked to be a valid runbook document."""

from __future__ import annotations

import json
from typing import Any

import pytest

from runbooks import documents
from runbooks.importers.base import escape_template
from runbooks.importers.service import convert
from runbooks.templating import TemplateContext, render_step_params


def converted(text: str, fmt: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    name, conversion = convert(text, fmt)
    assert conversion is not None
    documents.normalise(conversion.document)  # every conversion is a valid runbook document
    steps = {s["id"]: s for s in conversion.document["steps"]}
    return conversion.document, {"steps": steps, "report": conversion.report.as_dict(), "format": name}


RUNDECK_XML = """<joblist><job>
  <name>Restart web tier</name>
  <context><options>
    <option name='service' value='nginx' />
    <option name='api-token' secure='true' />
  </options></context>
  <nodefilters><filter>name: web1,web2</filter><dispatch><threadcount>2</threadcount></dispatch></nodefilters>
  <sequence keepgoing='true' strategy='{strategy}'>
    <command><exec>systemctl restart ${{option.service}}</exec>
      <errorhandler><exec>systemctl start ${{option.service}}</exec></errorhandler></command>
    <command><exec>curl -H "Authorization: ${{option.api-token}}" http://localhost/health | grep ok</exec></command>
  </sequence>
</job></joblist>"""


def test_rundeck_node_first_runs_every_command_on_a_node_before_the_next() -> None:
    doc, out = converted(RUNDECK_XML.format(strategy="node-first"))
    ids = [s["id"] for s in doc["steps"]]
    assert len(ids) == 4 and doc["parallelism"] == 2
    web1_restart, web2_restart, web1_health, web2_health = ids  # document order: each command on each host
    assert web2_restart.endswith("web2") and web1_health.startswith("2-")
    assert out["steps"][web2_health]["needs"] == [web2_restart]
    assert out["steps"][web1_health]["needs"] == [web1_restart]
    assert out["steps"][web2_restart]["needs"] == [web1_health]
    restart = out["steps"][web1_restart]
    assert restart["action"] == "ssh.run" and restart["with"]["host"] == "web1"
    assert restart["with"]["argv"] == ["systemctl", "restart", "{{ params.service }}"]
    assert restart["continue_on_failure"] is True
    assert restart["rollback"] == {
        "action": "ssh.run",
        "with": {**restart["with"], "argv": ["systemctl", "start", "{{ params.service }}"]},
    }
    # a pipe needs a shell: a manual step with the command, the secure option as a whole secret reference
    health = out["steps"][web1_health]
    assert health["action"] == "manual"
    assert "{{ secrets.api-token }}" not in health["with"]["instructions"]
    assert "{{ secrets.api_token }}" in health["with"]["instructions"]
    assert set(doc["parameters"]) == {"service", "ssh_username", "ssh_known_hosts", "ssh_key"}
    assert doc["parameters"]["service"]["default"] == "nginx"


def test_rundeck_step_first_and_parallel() -> None:
    doc, out = converted(RUNDECK_XML.format(strategy="step-first"))
    first = [s["id"] for s in doc["steps"] if s["with"].get("argv", [""])[0:2] == ["systemctl", "restart"]]
    second = [s["id"] for s in doc["steps"] if s["id"] not in first]
    assert len(first) == len(second) == 2
    for sid in first:
        assert out["steps"][sid].get("needs", []) == []
    for sid in second:
        assert out["steps"][sid]["needs"] == first
    doc, out = converted(RUNDECK_XML.format(strategy="parallel"))
    assert all(not s.get("needs") for s in doc["steps"])


def test_rundeck_yaml_script_and_job_reference() -> None:
    text = """\
- name: Rotate logs
  sequence:
    strategy: sequential
    commands:
      - script: |
          set -e
          find /var/log/app -name '*.gz' -mtime +7 -delete
      - jobref: {group: ops, name: notify}
"""
    doc, out = converted(text)
    script, jobref = doc["steps"]
    assert script["action"] == "shell"
    assert script["with"]["argv"][:2] == ["/bin/sh", "-c"]
    assert "find /var/log/app" in script["with"]["argv"][2]
    assert jobref["action"] == "manual" and "ops/notify" in jobref["with"]["instructions"]
    assert jobref["needs"] == [script["id"]]
    assert [e["outcome"] for e in out["report"]["entries"] if e["step"]] == ["converted", "manual"]


def test_template_escaping_renders_back_to_the_original() -> None:
    original = "echo {{ inventory_hostname }} {% raw %} {# c #}"
    escaped = escape_template(original)
    rendered = render_step_params({"x": escaped}, TemplateContext())
    assert rendered.value == {"x": original}


def test_chaos_toolkit_secrets_tolerances_and_rollbacks_in_order() -> None:
    experiment = {
        "title": "Cache loss",
        "configuration": {"base": "http://127.0.0.1:8080", "retries": 3},
        "secrets": {"shop": {"token": {"type": "env", "key": "SHOP_TOKEN"}}},
        "steady-state-hypothesis": {
            "title": "ok",
            "probes": [
                {
                    "name": "health",
                    "type": "probe",
                    "tolerance": {"type": "jsonpath", "path": "$.status", "expect": "up"},
                    "provider": {
                        "type": "http",
                        "url": "${base}/health",
                        "headers": {"Authorization": "Bearer ${token}"},
                    },
                },
                {
                    "name": "disk",
                    "type": "probe",
                    "tolerance": 0,
                    "provider": {"type": "process", "path": "df", "arguments": ["-h"]},
                },
            ],
        },
        "method": [
            {
                "type": "action",
                "name": "flush",
                "provider": {"type": "process", "path": "redis-cli", "arguments": "FLUSHALL"},
            }
        ],
        "rollbacks": [
            {"type": "action", "name": "first", "provider": {"type": "http", "url": "${base}/warm", "method": "POST"}},
            {"type": "action", "name": "second", "provider": {"type": "python", "module": "m", "func": "f"}},
        ],
    }
    doc, out = converted(json.dumps(experiment))
    steps = out["steps"]
    health = steps["before-health"]["with"]
    assert health["headers"] == {"Authorization": "Bearer {{ secrets.token }}"}
    assert health["json_checks"] == [{"path": "$.status", "equals": "up"}]
    assert steps["before-disk"]["with"] == {"argv": ["df", "-h"], "expected_exit_codes": [0]}
    assert doc["parameters"]["retries"] == {
        "type": "integer",
        "default": 3,
        "description": "A Chaos Toolkit configuration value.",
    }
    # markers chained so that the engine (dependents first) undoes "first" before "second"
    assert steps["rollback-marker-first"]["needs"] == ["rollback-marker-second"]
    assert steps["rollback-marker-first"]["rollback"]["action"] == "http"
    assert steps["rollback-marker-second"]["rollback"]["action"] == "manual"
    assert steps["flush"]["needs"] == ["rollback-marker-first"]
    assert steps["after-health"]["needs"] == ["flush"]


SSM = """\
schemaVersion: '0.3'
description: Restore the orders bucket
parameters:
  Bucket: {type: String}
  Count: {type: Integer, default: 3}
  Tags: {type: StringList, default: [a, b]}
mainSteps:
  - name: Describe
    action: aws:executeAwsApi
    onFailure: Continue
    inputs: {Service: s3, Api: GetBucketVersioning, Bucket: '{{ Bucket }}'}
    outputs: [{Name: Status, Selector: $.Status, Type: String}]
  - name: Approve
    action: aws:approve
    inputs:
      Approvers: ['arn:aws:iam::1:user/x']
      MinRequiredApprovals: 2
      Message: 'Versioning is {{ Describe.Status }}'
  - name: Pause
    action: aws:sleep
    inputs: {Duration: PT1M30S}
  - name: Script
    action: aws:executeScript
    inputs: {Runtime: python3.8, Handler: h, Script: "print('{{ Bucket }}')"}
    outputs: [{Name: Done, Selector: $.Payload, Type: String}]
  - name: UsesScript
    action: aws:executeAwsApi
    inputs: {Service: s3, Api: HeadBucket, Bucket: '{{ Script.Done }}'}
"""


def test_ssm_approve_sleep_outputs_and_manual_cascade() -> None:
    doc, out = converted(SSM)
    steps = out["steps"]
    assert steps["Describe"]["with"]["outputs"] == [{"name": "Status", "selector": "$.Status", "type": "String"}]
    assert steps["Describe"]["continue_on_failure"] is True
    assert steps["Approve"]["action"] == "noop"
    assert steps["Approve"]["approval"] == {"role": "approver", "approvers": 2}
    assert steps["Approve"]["with"]["message"] == "Versioning is {{ steps.Describe.output.Status }}"
    assert steps["Pause"]["with"] == {"seconds": 90}
    assert steps["Script"]["action"] == "manual" and "{{ params.Bucket }}" in steps["Script"]["with"]["instructions"]
    # the output of a manual step cannot feed an automated one: that step becomes manual too
    assert steps["UsesScript"]["action"] == "manual"
    assert "(the output Done of step Script)" in steps["UsesScript"]["with"]["instructions"]
    assert doc["parameters"]["Count"]["default"] == 3 and doc["parameters"]["Tags"]["default"] == '["a", "b"]'


def test_asr_group_actions_become_steps_around_the_items() -> None:
    plan = {
        "name": "rp",
        "properties": {
            "friendlyName": "Shop recovery",
            "groups": [
                {
                    "groupType": "Boot",
                    "startGroupActions": [
                        {
                            "actionName": "Stop writes",
                            "customDetails": {"instanceType": "ManualActionDetails", "description": "Freeze the shop"},
                        }
                    ],
                    "replicationProtectedItems": [{"id": "/x/replicationProtectedItems/db-vm"}],
                    "endGroupActions": [
                        {
                            "actionName": "Fix DNS",
                            "customDetails": {
                                "instanceType": "ScriptActionDetails",
                                "path": "C:\\\\dns.ps1",
                                "fabricLocation": "Recovery",
                            },
                        }
                    ],
                },
                {"groupType": "Boot", "replicationProtectedItems": [{"id": "/x/replicationProtectedItems/web-vm"}]},
            ],
        },
    }
    doc, out = converted(json.dumps(plan), "asr")
    ids = [s["id"] for s in doc["steps"]]
    assert ids == ["stop-writes", "failover-db-vm", "fix-dns", "failover-web-vm"]
    assert out["steps"]["failover-web-vm"]["needs"] == ["fix-dns"]
    assert "Freeze the shop" in out["steps"]["stop-writes"]["with"]["instructions"]


def test_ansible_import_playbook_and_task_file() -> None:
    doc, out = converted("- import_playbook: other.yml\n- hosts: db\n  tasks:\n    - ansible.builtin.ping:\n")
    first, second = doc["steps"]
    assert (first["action"], second["action"]) == ("manual", "ansible.playbook")
    assert second["with"]["inventory"] == "{{ params.ansible_inventory }}"
    doc, out = converted("- name: only a task\n  ansible.builtin.command: uptime\n", "ansible")
    [step] = doc["steps"]
    assert step["action"] == "ansible.playbook" and "hosts: all" in step["with"]["playbook"]
    assert out["report"]["notes"][0].startswith("A task file")


@pytest.mark.parametrize(
    ("text", "fmt", "where"),
    [
        ("- hosts: all\n  tasks: {a: 1}\n", "ansible", "[0].tasks"),
        ("schemaVersion: '0.3'\nmainSteps: [{name: 'bad name', action: aws:sleep}]\n", None, "mainSteps[0].name"),
        (
            "schemaVersion: '0.3'\nmainSteps: [{name: s, action: aws:sleep, inputs: {Duration: 5m}}]\n",
            None,
            "mainSteps[0] (s).inputs.Duration",
        ),
        (
            '{"title": "t", "method": [{"name": "a", "provider": {"type": "http", "url": "u", "timeout": "x"}}]}',
            None,
            "method[0].provider.timeout",
        ),
        (
            '{"properties": {"groups": [{"startGroupActions": [{"customDetails": {"instanceType": "Nope"}}]}]}}',
            "asr",
            "properties.groups[0].startGroupActions[0].customDetails.instanceType",
        ),
    ],
)
def test_structural_errors_name_the_key(text: str, fmt: str | None, where: str) -> None:
    from runbooks.importers.base import ImportFailed

    with pytest.raises(ImportFailed) as caught:
        convert(text, fmt)
    assert caught.value.message.startswith(f"{where}: ")
