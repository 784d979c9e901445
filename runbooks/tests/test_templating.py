"""Templating of step parameters: lists stay lists, the sandbox holds, missing names are named, secrets are masked.

What a rendered value does once an action runs it: failover/tests/test_templated_shell.py."""

from __future__ import annotations

import re

import pytest

from core.exceptions import InvalidInput
from runbooks.templating import TemplateContext, check_template, render_step_params, render_value

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
    # A number from a template in argv stays a number here (the shell action passes it on as text:
    # failover/tests/test_templated_shell.py).
    argv = render_step_params({"argv": ["echo", "{{ params.port }}"]}, _context()).value["argv"]
    assert argv == ["echo", 5432]


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
        ("{{ params.port + }}", "url: template syntax error: unexpected 'end of print statement'"),
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
    assert _error({"v": "{{ 'a' * 10000000 }}"}).message.startswith("v: too large: the result of '*' exceeds")
    assert _error({"v": "{{ 10 ** 100000 }}"}).message == "v: too large: exponent 100000 is larger than 100"


def test_error_messages_never_show_a_secret_value() -> None:
    error = _error({"v": "{{ secrets.api_token }} {{ params.nope }}"})
    assert TOKEN not in error.message
    assert error.message.startswith("v: unknown parameter 'nope'")


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


# --- secrets can only be used whole -----------------------------------------------------------

WHOLE_ONLY = "can only be used whole, as {{{{ {ref} }}}}: filters, slicing and expressions on secrets are not allowed"


def _refused(name: str = "api_token") -> str:
    ref = f"secrets.{name}"
    return f"{ref} {WHOLE_ONLY.format(ref=ref)}"


def _no_reads(name: str) -> str:
    raise AssertionError("a refused template must not read the secret")


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{{ secrets.api_token | reverse }}", _refused()),
        ("Bearer {{ secrets.api_token | reverse }}", _refused()),
        ("{{ secrets.api_token[:6] }}", _refused()),
        ("{{ secrets['api_token'][0] }}", _refused()),
        ("{{ secrets.api_token | list }}", _refused()),
        ("{{ secrets.api_token.upper() }}", _refused()),
        ("{{ secrets.api_token ~ '' | upper }}", _refused()),
        ("{{ (secrets.api_token ~ 'x') | upper }}", _refused()),
        ("{{ secrets.api_token == 'abc' }}", _refused()),
        ("{% if secrets.api_token == 'abc' %}yes{% endif %}", _refused()),
        ("{% if secrets.api_token.startswith('t') %}yes{% endif %}", _refused()),
        ("{% for c in secrets.api_token %}{{ c }},{% endfor %}", _refused()),
        ("{{ secrets.api_token if true else 'x' }}", _refused()),
        ("{{ params[secrets.api_token] }}", _refused()),
        ("{{ secrets.api_token is string }}", _refused()),
        ("{{ secrets.get('api_token') }}", _refused("get")),
        ("{{ 'Bearer %s' % secrets.api_token }}", _refused()),
        ("{{ secrets.api_token | length }}", _refused()),
        ("{{ [secrets.api_token] }}", _refused()),
        ("{% set s = secrets.api_token %}{{ s }}", _refused()),
        ("{% with s = secrets.api_token %}{{ s }}{% endwith %}", _refused()),
        (
            "{{ secrets['orders-db'] | reverse }}",
            "secrets['orders-db'] " + WHOLE_ONLY.format(ref="secrets['orders-db']"),
        ),
    ],
)
def test_a_secret_can_only_be_used_whole(template: str, message: str) -> None:
    error = _error({"headers": {"Authorization": template}}, _context(secret=_no_reads))
    assert error.message == f"headers.Authorization: {message}"
    assert error.field == "headers.Authorization"
    # Refused before anything runs: also in a dry run.
    assert _error({"headers": {"Authorization": template}}, dry_run=True).message == error.message


@pytest.mark.parametrize(
    "template",
    [
        "{{ secrets }}",
        "{% set s = secrets %}{{ s.api_token | reverse }}",
        "{% with s = secrets %}{{ s.api_token }}{% endwith %}",
        "{{ secrets[params.items] }}",
        "{{ secrets | list }}",
        "{% for name in secrets %}{{ name }}{% endfor %}",
        "{% set secrets = params %}{{ secrets.port }}",
        "{% for secrets in [1] %}{{ secrets }}{% endfor %}",
        "{{ dict(s=secrets) }}",
    ],
)
def test_the_name_secrets_cannot_be_passed_around(template: str) -> None:
    error = _error({"v": template}, _context(secret=_no_reads))
    assert error.message == f"v: secrets {WHOLE_ONLY.format(ref='secrets.NAME')}"


@pytest.mark.parametrize(
    ("template", "keyword"),
    [
        ("{% macro m() %}{{ secrets.api_token }}{% endmacro %}{{ m() | reverse }}", "macro"),
        ("{% set s %}{{ secrets.api_token }}{% endset %}{{ s | reverse }}", "set … endset"),
        ("{% filter reverse %}{{ secrets.api_token }}{% endfilter %}", "filter"),
        ("{% macro m() %}{{ caller() }}{% endmacro %}{% call m() %}{{ secrets.api_token }}{% endcall %}", "macro"),
        ("{% block b %}{{ secrets.api_token }}{% endblock %}{{ self.b() | reverse }}", "block"),
        ("{% for x in [1] recursive %}{{ secrets.api_token }}{% endfor %}", "for … recursive"),
        ("{% include 'other' %}", "include"),
        ("{% import 'other' as o %}", "import"),
        ("{% extends 'other' %}", "extends"),
    ],
)
def test_statements_that_capture_output_are_refused(template: str, keyword: str) -> None:
    error = _error({"v": template}, _context(secret=_no_reads))
    assert error.message == (f"v: {{% {keyword} %}} is not allowed in a parameter template (use if, for, set and with)")


def test_whole_secrets_still_render_anywhere_in_the_output() -> None:
    rendered = render_step_params(
        {
            "a": "Bearer {{ secrets.api_token }}",
            "b": "{% if params.port > 1 %}{{ secrets['api_token'] }}{% else %}none{% endif %}",
            "c": "{% for i in range(2) %}[{{ secrets.api_token }}]{% endfor %}",
            "d": "{% set n = params.port %}{{ n }}:{{ secrets.api_token }}",
        },
        _context(),
    )
    assert rendered.value == {"a": f"Bearer {TOKEN}", "b": TOKEN, "c": f"[{TOKEN}][{TOKEN}]", "d": f"5432:{TOKEN}"}
    assert rendered.masked == {"a": "Bearer ***", "b": "***", "c": "[***][***]", "d": "5432:***"}


def test_check_template_refuses_without_rendering() -> None:
    check_template("Bearer {{ secrets.api_token }} {{ params.anything | upper }}")
    check_template("no template here")
    with pytest.raises(InvalidInput) as error:
        check_template("{{ secrets.api_token | reverse }}")
    assert error.value.message == _refused()
    with pytest.raises(InvalidInput) as error:
        check_template("{{ params.port + }}")
    assert error.value.message == "template syntax error: unexpected 'end of print statement'"


# --- bounded output ---------------------------------------------------------------------------

BUILT = "the limit for a value built by a template"
RENDERED = "too large: the rendered value is longer than 65536 characters (64 KiB), the limit for one parameter"


@pytest.mark.parametrize(
    ("template", "what"),
    [
        ("{{ 'x' | center(30000000) }}", "the result of filter 'center'"),
        ("{{ 'x'.center(30000000) }}", "the result of str.center()"),
        ("{{ 'x'.ljust(30000000) }}", "the result of str.ljust()"),
        ("{{ 'x'.zfill(30000000) }}", "the result of str.zfill()"),
        ("{{ ('\t' * 1000).expandtabs(100000) }}", "the result of str.expandtabs()"),
        ("{{ params.port.to_bytes(30000000, 'big') }}", "the result of int.to_bytes()"),
        ("{{ params.port.to_bytes(length=30000000, byteorder='big') }}", "the result of int.to_bytes()"),
        ("{{ ('\t' * 1000).expandtabs(tabsize=100000) }}", "the result of str.expandtabs()"),
        ("{{ '%30000000d' | format(1) }}", "the result of filter 'format'"),
        ("{{ '%30000000d' % 1 }}", "the result of '%'"),
        ("{{ '%*d' % (30000000, 1) }}", "the result of '%'"),
        ("{{ ('%(a)s' * 1000) % {'a': 'x' * 10000} }}", "the result of '%'"),
        ("{{ '{:30000000}'.format(1) }}", "the result of str.format()"),
        ("{{ '{:{}}'.format(1, 30000000) }}", "the result of str.format()"),
        ("{{ '{:.30000000f}'.format(1.5) }}", "the result of str.format()"),
        ("{{ ('{0}' * 1000).format('x' * 10000) }}", "the result of str.format()"),
        ("{{ ('{a}' * 1000).format_map({'a': 'x' * 10000}) }}", "the result of str.format_map()"),
        ("{{ ('a\n' * 1000) | indent(30000) }}", "the result of filter 'indent'"),
        ("{{ ('a\n' * 1000) | indent('x' * 30000) }}", "the result of filter 'indent'"),
        ("{{ ('a ' * 30000) | wordwrap(1, wrapstring='x' * 1000) }}", "the result of filter 'wordwrap'"),
        ("{{ range(10000) | join('x' * 1000) }}", "the result of filter 'join'"),
        ("{{ range(10000) | map('string') | join('x' * 1000) }}", "the result of filter 'join'"),
        ("{{ ('x' * 200).join(range(10000) | map('string')) }}", "the result of str.join()"),
        ("{{ ('a' * 1000) | replace('a', 'x' * 10000) }}", "the result of filter 'replace'"),
        ("{{ ('a' * 1000).replace('a', 'x' * 10000) }}", "the result of str.replace()"),
        ("{{ ('a' * 1000).translate({97: 'x' * 10000}) }}", "the result of str.translate()"),
        ("{{ [1] | batch(1000000000, 'x') | list }}", "the result of filter 'batch'"),
        ("{{ [1] | slice(1000000000) | list }}", "the result of filter 'slice'"),
        ("{{ ([1] * 100000) * 100 }}", "the result of '*'"),
        ("{{ 'x' * 30000000 }}", "the result of '*'"),
        ("{{ ('x' * 1000000) ~ ('x' * 1000000) }}", "the result of '~'"),
        ("{{ ('x' * 1000000) + ('x' * 1000000) }}", "the result of '+'"),
        ("{{ range(10000) | map('center', 1000000) | list }}", "the results of filter 'map'"),
        ("{% set a = 'x' * 1000000 %}{% set b = [a, a, a, a] %}{{ b | string }}", "the input of filter 'string'"),
        ("{% set a = 'x' * 1000000 %}{{ 'x'.startswith([a, a]) }}", "an argument of str.startswith()"),
        ("{% set a = 'x' * 1000000 %}{{ dict(x=a, y=a) }}", "the result of dict()"),
    ],
)
def test_what_a_template_builds_is_bounded(template: str, what: str) -> None:
    error = _error({"headers": {"X-Big": template}})
    assert error.message == f"headers.X-Big: too large: {what} exceeds 1048576 characters (1 MiB), {BUILT}"
    assert error.field == "headers.X-Big"


def test_ranges_and_integers_are_bounded() -> None:
    assert _error({"v": "{{ range(10 ** 9) | join }}"}).message == (
        "v: too large: range(1000000000) has more than 10000 items"
    )
    assert _error({"v": "{% for i in range(0, 100000) %}{% endfor %}"}).message == (
        "v: too large: range(0, 100000) has more than 10000 items"
    )
    bits = "would have more than 65536 bits"
    assert _error({"v": "{% set a = 10 ** 100 %}{% set b = a ** 100 %}{{ b ** 100 }}"}).message == (
        f"v: too large: the result of '**' {bits}"
    )
    assert _error({"v": "{% set a = (10 ** 100) ** 100 %}{{ a * a * a }}"}).message == (
        f"v: too large: the result of '*' {bits}"
    )
    assert render_step_params({"v": "{{ (10 ** 100) ** 100 > 1 }}"}, _context()).value == {"v": True}


@pytest.mark.parametrize(
    "template",
    [
        "{{ 'x' * 70000 }}",
        "{{ 'x' * 60000 }}{{ 'y' * 6000 }}",
        "{% for i in range(10000) %}{{ 'x' * 100 }}{% endfor %}",
        "{{ 'x' | center(100000) }}",
        "{{ range(10000) | join('---') }}",
        "{{ params.big }}",
        "{% set a = 'x' * 1000000 %}{{ [a, a] }}",
    ],
)
def test_a_rendered_string_is_at_most_64_kib(template: str) -> None:
    error = _error({"argv": ["echo", template]}, _context(params={"big": "b" * 70000}))
    assert error.message == f"argv[1]: {RENDERED}"


def test_values_up_to_the_limits_render() -> None:
    rendered = render_step_params(
        {
            "exact": "{{ 'x' * 65536 }}",
            "text": "{{ 'x' | center(11) }}|{{ '%5d' % 42 }}|{{ '{:>4}'.format(7) }}|{{ ('a\nb') | indent(2) }}",
            "joined": "{{ range(5) | join(',') }}",
            "numbers": "{{ range(10000) | list }}",
            "sum": "{{ [[1], [2, 3]] | sum(start=[]) }}",
            "big": "{{ ('x' * 1000000) | length }}",
            "port": "{{ params.port * 2 }}",
            "keywords": "{{ 'a b c' | wordwrap(1, break_long_words=False, wrapstring='/') }}|"
            "{{ [1, 2, 3] | batch(linecount=2) | list }}|{{ [1, 2, 3] | slice(slices=2, fill_with=0) | list }}|"
            "{{ 'a\nb' | indent(width=1, first=True) }}|{{ 'x' | center(width=3) }}|"
            "{{ 'aXa' | replace('a', 'b', count=1) }}|{{ 'a%sc' | format('b') }}",
        },
        _context(),
    ).value
    assert len(rendered["exact"]) == 65536
    assert rendered["text"] == "     x     |   42|   7|a\n  b"
    assert rendered["joined"] == "0,1,2,3,4"
    assert rendered["numbers"] == list(range(10000))
    assert rendered["sum"] == [1, 2, 3]
    assert rendered["big"] == 1000000
    assert rendered["port"] == 10864
    assert rendered["keywords"] == "a/b/c|[[1, 2], [3]]|[[1, 2], [3, 0]]| a\n b| x |bXa|abc"


def test_deep_nesting_and_filter_assertions_are_input_errors() -> None:
    deep = "{{ " + "(" * 200 + "1" + ")" * 200 + " }}"
    assert _error({"v": deep}).message == "v: the template is nested too deeply"
    assert _error({"v": "{{ 'abcdef' | truncate(1, end='...') }}"}).message == (
        "v: template error: AssertionError: expected length >= 3, got 1"
    )


def test_filters_of_no_use_in_parameters_are_gone() -> None:
    assert _error({"v": "{{ 'http://x' | urlize }}"}).message == "v: template syntax error: No filter named 'urlize'."
    assert _error({"v": "{{ lipsum(100000) }}"}).message.startswith("v: unknown variable 'lipsum'")
    assert _error({"v": "{% set ns = namespace(a=1) %}{{ ns.a }}"}).message.startswith(
        "v: unknown variable 'namespace'"
    )


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (
            "{% for a in range(10000) %}{% for b in range(10000) %}{% endfor %}{% endfor %}",
            "for loops cannot be nested in a parameter template",
        ),
        ("{% for a in [1] %}{% if a %}{% for b in [2] %}{% endfor %}{% endif %}{% endfor %}", "cannot be nested"),
        ("{% for a in [1] %}{% endfor %}" * 6, "at most 5 for loops (6 here)"),
    ],
)
def test_loops_are_bounded_in_time_not_only_in_space(template, message):
    with pytest.raises(InvalidInput, match=re.escape(message)):
        check_template(template)
    assert message in _error({"v": template}).message
    # a single loop over a bounded iterable is fine
    context = _context(params={"hosts": ["a", "b"]})
    assert render_step_params({"v": "{% for h in params.hosts %}{{ h }},{% endfor %}"}, context).value == {"v": "a,b,"}
