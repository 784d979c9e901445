"""Templating of step parameters: lists stay lists, the sandbox holds, missing names are named, secrets are masked."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.exceptions import InvalidInput
from failover.engine.actions import StepContext, run_action
from failover.engine.templating import TemplateContext, render_step_params, render_value

HOSTILE = "x; touch pwned.txt"
TOKEN = "tok-3f9a-very-secret"


def _secret(name: str) -> str:
    if name == "api_token":
        return TOKEN
    raise InvalidInput(f"secret '{name}' is not defined", field="secret")


def _context(**extra) -> TemplateContext:
    base = {
        "params": {"target": HOSTILE, "port": 5432, "db": {"name": "orders"}, "items": "the-items-param"},
        "steps": {"lookup": {"exit_code": 0, "stdout": "10.0.0.7", "replicas": [{"lag": 3}]}},
        "plan": {"planId": "PLAN-7", "primary_site": "fra1"},
        "secret": _secret,
        "step_keys": {"lookup", "later", "orders.promote"},
    }
    return TemplateContext(**{**base, **extra})


def _error(params: dict, context: TemplateContext | None = None, **kwargs) -> InvalidInput:
    with pytest.raises(InvalidInput) as error:
        render_step_params(params, context or _context(), **kwargs)
    return error.value


def test_injection_value_stays_one_argv_element_and_creates_no_file(tmp_path: Path) -> None:
    rendered = render_step_params(
        {"argv": ["printf", "%s\\n", "{{ params.target }}"], "cwd": str(tmp_path)}, _context()
    )
    assert rendered.value == {"argv": ["printf", "%s\\n", HOSTILE], "cwd": str(tmp_path)}
    lines: list[str] = []
    result = run_action("shell", rendered.value, StepContext(execution_id=1, step_key="s", log=lines.append))
    assert result.ok, result.error
    assert lines == [HOSTILE]
    assert not (tmp_path / "pwned.txt").exists()
    assert list(tmp_path.iterdir()) == []

    # Also when the value is part of a longer string, or fed to sh -c as an argument (not the script).
    rendered = render_step_params(
        {"argv": ["sh", "-c", 'printf "%s\\n" "$1"', "sh", "--target={{ params.target }}"], "cwd": str(tmp_path)},
        _context(),
    )
    assert rendered.value["argv"][-1] == f"--target={HOSTILE}"
    lines.clear()
    assert run_action("shell", rendered.value, StepContext(execution_id=1, step_key="s", log=lines.append)).ok
    assert lines == [f"--target={HOSTILE}"]
    assert not (tmp_path / "pwned.txt").exists()


def test_references_render_and_single_expressions_keep_their_type() -> None:
    rendered = render_step_params(
        {
            "host": "{{ steps.lookup.output.stdout }}",
            "port": "{{ params.port }}",
            "url": "https://{{ plan.primary_site }}.example/health?db={{ params.db.name | upper }}",
            "lag": "{{ steps.lookup.output.replicas[0].lag }}",
            "db": " {{ params.db }} ",
            "label": "{{ params.items }}",
            "composed": "{{ steps['orders.promote'].output.ok }}",
            "untouched": {"n": 3, "flag": True, "none": None, "text": "plain {braces}"},
        },
        _context(steps={"lookup": {"stdout": "10.0.0.7", "replicas": [{"lag": 3}]}, "orders.promote": {"ok": True}}),
    )
    assert rendered.value == {
        "host": "10.0.0.7",
        "port": 5432,
        "url": "https://fra1.example/health?db=ORDERS",
        "lag": 3,
        "db": {"name": "orders"},
        "label": "the-items-param",
        "composed": True,
        "untouched": {"n": 3, "flag": True, "none": None, "text": "plain {braces}"},
    }
    assert rendered.masked == rendered.value
    assert rendered.secrets_used == set()
    # A number from a template in argv reaches the command as text.
    argv = render_step_params({"argv": ["echo", "{{ params.port }}"]}, _context()).value["argv"]
    assert argv == ["echo", 5432]
    lines: list[str] = []
    assert run_action("shell", {"argv": argv}, StepContext(execution_id=1, step_key="s", log=lines.append)).ok
    assert lines == ["5432"]


def test_secrets_are_masked_in_the_stored_copy_and_collected_for_the_redactor() -> None:
    rendered = render_step_params(
        {
            "headers": {"Authorization": "Bearer {{ secrets.api_token }}", "X-Site": "{{ plan.primary_site }}"},
            "token": "{{ secrets['api_token'] }}",
            "argv": ["curl", "-H", "X-Token: {{ secrets.api_token }}"],
        },
        _context(),
    )
    assert rendered.value["headers"] == {"Authorization": f"Bearer {TOKEN}", "X-Site": "fra1"}
    assert rendered.value["token"] == TOKEN
    assert rendered.masked == {
        "headers": {"Authorization": "Bearer ***", "X-Site": "fra1"},
        "token": "***",
        "argv": ["curl", "-H", "X-Token: ***"],
    }
    assert rendered.secrets_used == {TOKEN}
    assert rendered.secret_names == {"api_token"}
    assert TOKEN not in repr(rendered.masked)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ params.nope }}", "url: unknown parameter 'nope' (execution parameters: db, items, port, target)"),
        ("x-{{ params.db.host }}", "url: params.db has no 'host'"),
        ("{{ steps.ghost.output }}", "url: unknown step 'ghost'"),
        ("{{ steps.later.output.x }}", "url: step 'later' has no output yet: it must be in this step's needs"),
        ("{{ steps.lookup.output.nope }}", "url: output of step 'lookup' has no 'nope'"),
        ("{{ secrets.db_password }}", "url: secret 'db_password' is not defined"),
        ("{{ plan.nope }}", "url: plan has no 'nope'"),
        ("{{ nothing }}", "url: unknown variable 'nothing' (use params., steps., plan. or secrets.)"),
        ("{{ params.port + }}", "url: template syntax error: unexpected 'end of template'"),
        ("{{ 1 / 0 }}", "url: template error: ZeroDivisionError: division by zero"),
    ],
)
def test_errors_name_what_is_missing(template: str, message: str) -> None:
    error = _error({"url": template})
    assert error.message == message
    assert error.field == "url"


def test_error_paths_point_into_lists_and_dicts() -> None:
    assert _error({"argv": ["echo", "{{ params.nope }}"]}).message.startswith("argv[1]: unknown parameter 'nope'")
    assert _error({"headers": {"X-A": "{{ params.nope }}"}}).field == "headers.X-A"


@pytest.mark.parametrize(
    "template",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "prefix {{ params.__class__ }}",
        "{{ steps._context }}",
        "{{ secrets._fetch }}",
        "{{ cycler.__init__.__globals__ }}",
    ],
)
def test_sandbox_blocks_attribute_access(template: str) -> None:
    error = _error({"v": template})
    assert error.message.startswith("v: blocked by the template sandbox: access to attribute ")
    assert "is unsafe" in error.message


def test_sandbox_blocks_mutation_and_huge_values() -> None:
    context = _context(params={"hosts": ["a"]})
    assert "blocked by the template sandbox" in _error({"v": "{{ params.hosts.append('b') }}"}, context).message
    assert context.params == {"hosts": ["a"]}
    assert "repetition would produce more than" in _error({"v": "{{ 'a' * 10000000 }}"}).message
    assert "exponent" in _error({"v": "{{ 10 ** 100000 }}"}).message


def test_error_messages_never_show_a_secret_value() -> None:
    error = _error({"v": "{{ params[secrets.api_token] }}"})
    assert TOKEN not in error.message
    assert error.message.startswith("v: unknown parameter '***'")


def test_dry_run_uses_placeholders_and_reads_no_secret() -> None:
    def no_reads(name: str) -> str:
        raise AssertionError("a dry run must not read secret values")

    rendered = render_step_params(
        {
            "argv": ["promote", "--from={{ steps.later.output.stdout }}", "{{ steps.later.output }}"],
            "token": "Bearer {{ secrets.api_token }}",
            "host": "{{ steps.lookup.output.stdout }}",
        },
        _context(secret=no_reads),
        dry_run=True,
    )
    assert rendered.value == {
        "argv": ["promote", "--from=<output of later>", "<output of later>"],
        "token": "Bearer ***",
        "host": "10.0.0.7",
    }
    assert rendered.masked == rendered.value
    assert rendered.secrets_used == set()
    assert rendered.secret_names == {"api_token"}
    # Even in a dry run, a step that does not exist and a missing parameter are errors.
    assert _error({"v": "{{ steps.ghost.output }}"}, dry_run=True).message == "v: unknown step 'ghost'"
    assert _error({"v": "{{ params.nope }}"}, dry_run=True).message.startswith("v: unknown parameter 'nope'")
    # Without the list of step keys, any step without an output renders as a placeholder.
    rendered = render_step_params({"v": "{{ steps.x.output }}"}, TemplateContext(), dry_run=True)
    assert rendered.value == {"v": "<output of x>"}


def test_render_value_for_a_single_string() -> None:
    rendered = render_value("SELECT {{ params.port }} -- {{ secrets.api_token }}", _context())
    assert rendered.value == f"SELECT 5432 -- {TOKEN}"
    assert rendered.masked == "SELECT 5432 -- ***"
