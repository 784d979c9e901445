"""Parameter schema of `ansible.playbook` (registered on import); the executor is
failover/engine/actions/ansible.py."""

from runbooks.actions import ActionSpec, register_action

register_action(
    ActionSpec(
        "ansible.playbook",
        "Run an Ansible playbook (its YAML text) through ansible-runner against an inventory; each task's result "
        "on each host is written to the step's log; succeeds if the playbook does.",
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["playbook", "inventory"],
            "properties": {
                "playbook": {
                    "type": "string",
                    "minLength": 1,
                    "description": "The playbook (a list of plays) as YAML.",
                },
                "inventory": {
                    "type": "string",
                    "minLength": 1,
                    "description": "Inventory text (INI or YAML) or a path to an inventory file on the worker.",
                },
                "project_dir": {
                    "type": "string",
                    "description": "Directory the playbook runs in (its vars files, roles); empty = a fresh one.",
                },
                "extra_vars": {"type": "object", "description": "Variables passed with --extra-vars."},
                "limit": {"type": "string", "description": "Limit the run to these hosts (a host pattern)."},
            },
        },
    )
)
