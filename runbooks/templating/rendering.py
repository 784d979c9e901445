"""Templating of step parameters: sandboxed Jinja2 over params, plan data, earlier outputs and secrets.

    argv: ["pg_ctl", "promote", "-D", "{{ params.data_dir }}"]
    url: "https://{{ plan.primary_site }}/health"
    headers: {Authorization: "Bearer {{ secrets.api_token }}"}
    port: "{{ steps.lookup.output.port }}"        # exactly one expression: keeps its type (int)

Every string inside the parameters' dicts and lists is rendered on its own, so a list
stays a list and a value such as `x; touch pwned.txt` stays one argv element: nothing
here ever joins strings into a command line. The environment is Jinja2's immutable
sandbox (no `__class__`, no mutation of the context) with bounded output: a rendered
string is at most 64 KiB and nothing built along the way more than 1 MiB (see
runbooks/templating/limits.py). A missing name is an error that names it
(InvalidInput), never an empty string.

The secrets rule: a secret can only be used whole. The name `secrets` may appear only as
`{{ secrets.NAME }}` or `{{ secrets['NAME'] }}`, an output expression on its own (inside a
longer string is fine: "Bearer {{ secrets.api_token }}"). A filter, test, slice, index,
method call, comparison, concatenation or loop over a secret, binding it (or `secrets`
itself) with set/with/for, or passing `secrets` around would print or reveal the value in a
form the Redactor cannot recognise (reversed, sliced, an oracle), so it is refused.
Statements that capture output as a value (macro, call, filter, block, `set … endset`,
recursive for) and include/import/extends are refused too: they would let a whole secret be
transformed after all. Loops are bounded in time as the limits bound them in space: a template
has at most MAX_LOOPS `for` statements and none inside another, so with iterables of at most
1 MiB (or a 10,000-item range) no template iterates more than a few million times. These
checks run on the parsed template, once per source (cached with the compilation), before
anything is evaluated or read: in a dry run and at runbook import (runbooks.documents) as well.

The result has the real values for the executor, a masked copy (each secret shown as
`***`) for StepRun.rendered and for people, and the secret values used, for the
Redactor that keeps them out of events, logs and errors.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, TemplateSyntaxError, Undefined, UndefinedError, nodes
from jinja2.environment import TemplateExpression
from jinja2.exceptions import SecurityError
from jinja2.utils import missing

from core.exceptions import InvalidInput
from core.secrets import MASK, Redactor
from runbooks.templating.limits import (
    MAX_OUTPUT,
    MAX_VALUE,
    BoundedSandbox,
    TemplateTooLarge,
    output_too_large,
    size_of,
)

# A string that is exactly one expression keeps the expression's type.
_SINGLE_EXPRESSION = re.compile(r"^\s*\{\{(?P<expr>(?:(?!\{\{|\}\}|\{%|%\}|\{#).)*)\}\}\s*$", re.DOTALL)
_TEMPLATE_MARKERS = ("{{", "{%", "{#")


@dataclass
class TemplateContext:
    """What a step's parameters may reference.

    params: the execution parameters (`params.X`); steps: step key or id -> that step's
    output dict (`steps.X.output.Y`); plan: plan data (`plan.X`); secret: name -> value
    (`secrets.X`), e.g. core.secrets.get_secret_value. step_keys, when given, are all the
    steps of the execution: a reference to any other step is "unknown step" even in a dry
    run, and one to a known step without an output yet says so.
    """

    params: dict[str, Any] = field(default_factory=dict)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    plan: dict[str, Any] | None = None
    secret: Callable[[str], str] | None = None
    step_keys: Collection[str] | None = None


@dataclass
class RenderedParams:
    value: dict[str, Any]  # real values, for the executor only
    masked: dict[str, Any]  # secrets as ***: for StepRun.rendered, events and the API
    secrets_used: set[str]  # the secret VALUES used, for the Redactor
    secret_names: set[str] = field(default_factory=set)  # the secret names referenced


class _Named(dict):
    """A dict that knows where it came from, so a missing key is reported by name."""

    def __init__(self, data: dict[str, Any], label: str) -> None:
        super().__init__(data)
        self._label = label

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        if isinstance(value, dict) and not isinstance(value, _Named):
            return _Named(value, f"{self._label}.{key}")
        return value


class _Undefined(StrictUndefined):
    """StrictUndefined whose message names the missing parameter, step output or plan field."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return self._undefined_hint
        name = self._undefined_name
        if self._undefined_obj is missing:
            return f"unknown variable '{name}' (use params., steps., plan. or secrets.)"
        obj = self._undefined_obj
        if isinstance(obj, _Named):
            if obj._label == "params":
                known = ", ".join(sorted(map(str, obj))[:20]) or "none"
                return f"unknown parameter '{name}' (execution parameters: {known})"
            return f"{obj._label} has no '{name}'"
        return super()._undefined_message


class _Placeholder:
    """Dry run: what a step's output will be once it has run."""

    def __init__(self, text: str) -> None:
        self._text = text

    def __str__(self) -> str:
        return self._text

    def __getattr__(self, name: str) -> _Placeholder:
        if name.startswith("_"):
            raise AttributeError(name)
        return self

    def __getitem__(self, key: Any) -> _Placeholder:
        return self


class _Steps:
    """`steps.X.output`: outputs of earlier steps, by step key or id."""

    def __init__(self, context: TemplateContext, dry_run: bool) -> None:
        self._context = context
        self._dry_run = dry_run

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        return self[key]

    def __getitem__(self, key: str) -> Any:
        outputs = self._context.steps
        known = self._context.step_keys
        if key in outputs:
            return _Named({"output": _Named(outputs[key] or {}, f"output of step '{key}'")}, f"step '{key}'")
        if known is not None and key not in known:
            raise InvalidInput(f"unknown step '{key}'", field="steps")
        if self._dry_run:
            return _Named({"output": _Placeholder(f"<output of {key}>")}, f"step '{key}'")
        if known is None:
            raise InvalidInput(f"unknown step '{key}' (or it has not run yet)", field="steps")
        raise InvalidInput(f"step '{key}' has no output yet: it must be in this step's needs", field="steps")

    def __str__(self) -> str:
        return "<steps>"


class _Secrets:
    """`secrets.NAME`: fetched on first use; masked (or dry run) → `***`."""

    def __init__(self, fetch: Callable[[str], str] | None, names: set[str], used: set[str], *, masked: bool) -> None:
        self._fetch = fetch
        self._names = names
        self._used = used
        self._masked = masked
        self._cache: dict[str, str] = {}
        self._accesses = 0

    def __getattr__(self, name: str) -> str:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __getitem__(self, name: str) -> str:
        name = str(name)
        self._accesses += 1
        self._names.add(name)
        if self._masked:
            return MASK
        if name not in self._cache:
            if self._fetch is None:
                raise InvalidInput(f"secret '{name}' cannot be used here: no secret store", field="secrets")
            value = self._fetch(name)
            self._cache[name] = value
            self._used.add(value)
        return self._cache[name]

    def __str__(self) -> str:
        return "<secrets>"


class _Environment(BoundedSandbox):
    def getattr(self, obj: Any, attribute: str) -> Any:
        # `params.items` is the parameter named "items", not the dict method.
        if isinstance(obj, _Named) and attribute in obj:
            return obj[attribute]
        return super().getattr(obj, attribute)


_ENV = _Environment(undefined=_Undefined, autoescape=False, keep_trailing_newline=True)


# Statements a parameter template may use; the others capture output as a value or load other templates.
_ALLOWED_STATEMENTS = (nodes.Output, nodes.If, nodes.For, nodes.Assign, nodes.With)
_STATEMENT_KEYWORDS = {
    nodes.Macro: "macro",
    nodes.CallBlock: "call",
    nodes.FilterBlock: "filter",
    nodes.AssignBlock: "set … endset",
    nodes.Block: "block",
    nodes.Include: "include",
    nodes.Import: "import",
    nodes.FromImport: "from … import",
    nodes.Extends: "extends",
}
_WHOLE_ONLY = "can only be used whole, as {{{{ {ref} }}}}: filters, slicing and expressions on secrets are not allowed"


def _secret_reference(node: nodes.Node) -> str | None:
    """NAME if node is `secrets.NAME` or `secrets['NAME']`."""
    if not isinstance(node, (nodes.Getattr, nodes.Getitem)):
        return None
    if not (isinstance(node.node, nodes.Name) and node.node.name == "secrets"):
        return None
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
        return node.arg.value
    return None


MAX_LOOPS = 5


def _check_rules(tree: nodes.Template) -> None:
    """Raise InvalidInput if the template breaks the statement, loop or secrets rule (module docstring)."""
    loops = list(tree.find_all(nodes.For))
    if len(loops) > MAX_LOOPS:
        raise InvalidInput(f"a parameter template may have at most {MAX_LOOPS} for loops ({len(loops)} here)")
    if any(loop.find(nodes.For) is not None for loop in loops):
        raise InvalidInput("for loops cannot be nested in a parameter template")
    for statement in tree.find_all(nodes.Stmt):
        if isinstance(statement, nodes.For) and statement.recursive:
            keyword = "for … recursive"
        elif isinstance(statement, _ALLOWED_STATEMENTS):
            continue
        else:
            keyword = _STATEMENT_KEYWORDS.get(type(statement), type(statement).__name__.lower())
        raise InvalidInput(f"{{% {keyword} %}} is not allowed in a parameter template (use if, for, set and with)")
    whole = {id(node) for output in tree.find_all(nodes.Output) for node in output.nodes if _secret_reference(node)}
    stack: list[tuple[nodes.Node, nodes.Node | None]] = [(tree, None)]
    while stack:
        node, parent = stack.pop()
        if isinstance(node, nodes.Name) and node.name == "secrets":
            owner = parent if getattr(parent, "node", None) is node else None  # `secrets.X` / `secrets[X]`
            if owner is not None and id(owner) in whole:
                continue
            name = _secret_reference(owner) if owner is not None else None
            if name is None:
                ref, use = "secrets", "secrets.NAME"
            else:
                ref = f"secrets.{name}" if name.isidentifier() else f"secrets[{name!r}]"
                use = ref
            raise InvalidInput(f"{ref} {_WHOLE_ONLY.format(ref=use)}")
        stack.extend((child, node) for child in node.iter_child_nodes())


@functools.lru_cache(maxsize=2048)
def _compile(source: str) -> Template | TemplateExpression:
    """Parse, check the rules, compile; once per source. A string that is exactly one expression
    compiles to an expression (native result)."""
    try:
        tree = _ENV.parse(source)
        _check_rules(tree)
        match = _SINGLE_EXPRESSION.match(source)
        if match:
            return _ENV.compile_expression(match.group("expr"), undefined_to_none=False)
        return _ENV.from_string(tree)
    except RecursionError:
        raise InvalidInput("the template is nested too deeply") from None


def check_template(source: str) -> None:
    """Raise InvalidInput (without a path) if `source` does not compile or breaks a rule of the
    module docstring; evaluates nothing. For checks before a run, e.g. at runbook import."""
    if not any(marker in source for marker in _TEMPLATE_MARKERS):
        return
    try:
        _compile(source)
    except TemplateSyntaxError as exc:
        raise InvalidInput(f"template syntax error: {exc.message}") from None


def _evaluate(compiled: Template | TemplateExpression, variables: dict[str, Any]) -> Any:
    if isinstance(compiled, Template):
        parts, length = [], 0
        for part in compiled.generate(variables):  # streamed: a loop stops as soon as it is too long
            length += len(part)
            if length > MAX_OUTPUT:
                raise output_too_large()
            parts.append(part)
        return "".join(parts)
    result = compiled(variables)
    if isinstance(result, Undefined):
        str(result)  # raises the undefined (or sandbox) error naming what is missing
    if size_of(result, MAX_VALUE) > (MAX_OUTPUT if isinstance(result, str) else MAX_VALUE):
        raise output_too_large()
    return _plain(result)


def _plain(value: Any) -> Any:
    """A native expression result as plain JSON-like data."""
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _plain(dict.__getitem__(value, k)) for k in value}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return str(value)


class _Renderer:
    def __init__(self, context: TemplateContext, dry_run: bool) -> None:
        self.secret_values: set[str] = set()
        self.secret_names: set[str] = set()
        base = {
            "params": _Named(context.params or {}, "params"),
            "steps": _Steps(context, dry_run),
            "plan": _Named(context.plan or {}, "plan"),
        }
        real_secrets = _Secrets(context.secret, self.secret_names, self.secret_values, masked=dry_run)
        self.real = {**base, "secrets": real_secrets}
        self.masked = {**base, "secrets": _Secrets(None, set(), set(), masked=True)}

    def render(self, value: Any, path: str) -> tuple[Any, Any]:
        """(real, masked) for one parameter value."""
        if isinstance(value, str):
            return self._render_string(value, path)
        if isinstance(value, dict):
            real, masked = {}, {}
            for key, item in value.items():
                real[key], masked[key] = self.render(item, f"{path}.{key}" if path else str(key))
            return real, masked
        if isinstance(value, (list, tuple)):
            pairs = [self.render(item, f"{path}[{index}]") for index, item in enumerate(value)]
            return [p[0] for p in pairs], [p[1] for p in pairs]
        return value, value

    def _render_string(self, source: str, path: str) -> tuple[Any, Any]:
        if not any(marker in source for marker in _TEMPLATE_MARKERS):
            return source, source
        secrets = self.real["secrets"]
        accesses_before = secrets._accesses
        try:
            compiled = _compile(source)
            real = _evaluate(compiled, self.real)
            if secrets._accesses == accesses_before:
                return real, real
            return real, _evaluate(compiled, self.masked)
        except InvalidInput as exc:
            raise InvalidInput(self._message(path, exc.message), field=path) from None
        except TemplateTooLarge as exc:
            raise InvalidInput(self._message(path, exc.message or ""), field=path) from None
        except SecurityError as exc:
            raise InvalidInput(self._message(path, f"blocked by the template sandbox: {exc}"), field=path) from None
        except UndefinedError as exc:
            raise InvalidInput(self._message(path, str(exc)), field=path) from None
        except TemplateSyntaxError as exc:
            raise InvalidInput(self._message(path, f"template syntax error: {exc.message}"), field=path) from None
        except (
            TemplateError,
            ArithmeticError,
            TypeError,
            ValueError,
            LookupError,
            AttributeError,
            AssertionError,
        ) as exc:
            raise InvalidInput(
                self._message(path, f"template error: {type(exc).__name__}: {exc}"), field=path
            ) from None

    def _message(self, path: str, message: str) -> str:
        return Redactor(self.secret_values).redact(f"{path}: {message}" if path else message)


def render_step_params(params: dict[str, Any], context: TemplateContext, *, dry_run: bool = False) -> RenderedParams:
    """Render every string in a step's `with` (see the module docstring).

    Raises core.exceptions.InvalidInput naming the parameter path and what is missing
    or forbidden (unknown parameter, step or secret; sandbox violation; syntax error).
    In a dry run, outputs of steps that have not run render as "<output of X>" and
    secrets as "***" without being read.
    """
    renderer = _Renderer(context, dry_run)
    value, masked = renderer.render(params or {}, "")
    return RenderedParams(value, masked, set(renderer.secret_values), set(renderer.secret_names))


def render_value(value: Any, context: TemplateContext, *, dry_run: bool = False) -> RenderedParams:
    """Like render_step_params for one value (a string, list or dict), e.g. a validation check's query."""
    renderer = _Renderer(context, dry_run)
    real, masked = renderer.render(value, "")
    return RenderedParams(real, masked, set(renderer.secret_values), set(renderer.secret_names))
