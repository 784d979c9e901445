"""Bounded templates: nothing a parameter template builds can grow past a limit, so a template cannot
exhaust a worker's memory (`{{ 'x' | center(30000000) }}`, `{{ '%30000000d' % 1 }}`,
`{{ range(10000) | join('x' * 1000) }}` …).

- MAX_OUTPUT (64 KiB): one rendered string; checked while the template streams its output, so a
  loop stops as soon as it passes the limit.
- MAX_VALUE (1 MiB): any value built while rendering — the result of an operator (`+ * % ** ~`),
  a filter, a function or method call — and any value handed to one. The size of a string is its
  length; of a list, tuple or dict, its number of items plus their sizes (so a list built from
  literals cannot be turned into a huge string either).
- MAX_RANGE (10,000 items) for `range()`, MAX_INT_BITS (65,536 bits) for integers from `*` and `**`.

Where the size can be worked out beforehand it is, so the allocation never happens: widths of
center/ljust/format/`%`, indent and wordwrap padding, join and replace results, repetitions,
batch/slice fill-ups; results are checked afterwards as well (that bounds the rest to a small
multiple of MAX_VALUE). Exceeding a limit raises TemplateTooLarge, which the renderer reports as
InvalidInput naming the parameter. Filters and globals of no use in parameters that only make
text bigger (`urlize`, `lipsum`) and `namespace` (state that outlives a loop iteration) are removed.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, ItemsView, Iterator, KeysView, ValuesView
from typing import Any

from jinja2 import TemplateError, filters, pass_eval_context
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat
from jinja2.sandbox import ImmutableSandboxedEnvironment, SandboxedFormatter

MAX_OUTPUT = 64 * 1024
MAX_VALUE = 1024 * 1024
MAX_RANGE = 10_000
MAX_INT_BITS = 64 * 1024
MAX_EXPONENT = 100
_PRINTF_SPEC = re.compile(r"%%|%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS = re.compile(r"\d+")


class TemplateTooLarge(TemplateError):
    """A template would build or render more than a limit of this module."""


def _too_large(what: str) -> TemplateTooLarge:
    return TemplateTooLarge(
        f"too large: {what} exceeds {MAX_VALUE} characters (1 MiB), the limit for a value built by a template"
    )


def output_too_large() -> TemplateTooLarge:
    return TemplateTooLarge(
        f"too large: the rendered value is longer than {MAX_OUTPUT} characters (64 KiB), the limit for one parameter"
    )


def size_of(value: Any, limit: int = MAX_VALUE) -> int:
    """Characters of a string; items plus their sizes for a list, tuple, set, dict or range; about the
    digits of a number; 1 for anything else. Stops counting once past `limit`."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, bool) or item is None:
            total += 1
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        elif isinstance(item, float):
            total += 24
        elif isinstance(item, range):
            total += len(item) * 2
        elif isinstance(item, dict):
            total += len(item)
            if total <= limit:
                stack.extend(dict.keys(item))
                stack.extend(dict.values(item))
        elif isinstance(item, (list, tuple, set, frozenset, KeysView, ValuesView, ItemsView)):
            total += len(item)
            if total <= limit:
                stack.extend(item)
        else:
            total += 1
    return total


def check_size(value: Any, what: str) -> Any:
    """value, if its size is within MAX_VALUE; else TemplateTooLarge naming `what`."""
    if size_of(value) > MAX_VALUE:
        raise _too_large(what)
    return value


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _printf_size(template: str, values: Any) -> int:
    """An upper bound of the size of `template % values`."""
    args = values if isinstance(values, tuple) else (values,)
    widths = [0]
    specs = 0
    for match in _PRINTF_SPEC.finditer(template):
        if match.group(0) == "%%":
            continue
        specs += 1
        for number in match.groups():
            if number == "*":
                widths.extend(_int(arg) for arg in args)
            elif number:
                widths.append(int(number))
    items = list(values.values()) if isinstance(values, dict) else list(args)
    return len(template) + specs * max([size_of(item) for item in items] + widths)


def _str_method_size(owner: str | bytes, name: str, args: tuple, kwargs: dict) -> int:
    """An upper bound of the size of `owner.name(*args, **kwargs)` for the str/bytes methods that can
    make text much bigger than their inputs; 0 for the others (their result is checked afterwards)."""
    n = len(owner)
    values = [*args, *kwargs.values()]
    if name in ("center", "ljust", "rjust", "zfill"):
        return max([n, *(_int(v) for v in values)])
    if name == "expandtabs":
        tabs = owner.count("\t") if isinstance(owner, str) else owner.count(b"\t")
        return n + tabs * (_int(values[0]) if values else 8)
    if name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = owner.count(old) if old else n + 1
        if len(args) > 2 and _int(args[2]) >= 0:
            count = min(count, _int(args[2]))
        return n + count * max(0, len(new) - len(old))
    if name == "translate" and args and isinstance(args[0], dict):
        return n * max([1, *(size_of(v) for v in args[0].values())])
    return 0


class _Formatter(SandboxedFormatter):
    """str.format / format_map: refuses a width or precision over the limit (nested fields already
    filled in), and stops as soon as the fields add up to more than the limit."""

    def __init__(self, env: Any, what: str) -> None:
        super().__init__(env)
        self._what = what
        self._total = 0

    def format_field(self, value: Any, format_spec: str) -> Any:
        if any(int(number) > MAX_VALUE for number in _DIGITS.findall(format_spec)):
            raise _too_large(self._what)
        text = super().format_field(value, format_spec)
        self._total += len(text)
        if self._total > MAX_VALUE:
            raise _too_large(self._what)
        return text


class _CodeGenerator(CodeGenerator):
    """`a ~ b` goes through BoundedSandbox.bounded_concat, which checks the size before joining."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        self.write("environment.bounded_concat((")
        for part in node.nodes:
            self.visit(part, frame)
            self.write(", ")
        self.write("))")


def _budgeted(items: Iterator[Any], what: str) -> Iterator[Any]:
    """The items, until they add up to more than MAX_VALUE (each counts at least 1)."""
    total = 0
    for item in items:
        total += 1 + size_of(item)
        if total > MAX_VALUE:
            raise _too_large(what)
        yield item


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, with its inputs and its result (or the items it yields) checked."""

    @functools.wraps(function)  # keeps jinja_pass_arg (pass_context, pass_eval_context …)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        for value in (*args, *kwargs.values()):
            check_size(value, f"the input of filter '{name}'")
        result = function(*args, **kwargs)
        if isinstance(result, Iterator):
            return _budgeted(result, f"the results of filter '{name}'")
        return check_size(result, f"the result of filter '{name}'")

    return bounded


def _estimated(name: str, function: Callable[..., Any], estimate: Callable[..., int]) -> Callable[..., Any]:
    """A filter that is refused when `estimate(same arguments)` is over MAX_VALUE, before it runs."""

    @functools.wraps(function)
    def estimated(*args: Any, **kwargs: Any) -> Any:
        if estimate(*args, **kwargs) > MAX_VALUE:
            raise _too_large(f"the result of filter '{name}'")
        return function(*args, **kwargs)

    return estimated


def _center_size(value: Any, width: int = 80) -> int:
    return max(len(str(value)), _int(width))


def _indent_size(s: Any, width: int | str = 4, first: bool = False, blank: bool = False) -> int:
    text = str(s)
    return len(text) + (text.count("\n") + 1) * (len(width) if isinstance(width, str) else _int(width))


def _format_size(value: Any, *args: Any, **kwargs: Any) -> int:
    return _printf_size(str(value), kwargs or args)


def _wordwrap_size(
    env: Any,
    s: Any,
    width: int = 79,
    break_long_words: bool = True,
    wrapstring: str | None = None,
    break_on_hyphens: bool = True,
) -> int:
    text = str(s)
    breaks = len(text.split()) + len(text) // max(1, _int(width)) + 1
    return len(text) + breaks * len(wrapstring if wrapstring is not None else "\n")


def _replace_size(eval_ctx: Any, s: Any, old: Any, new: Any, count: Any = None) -> int:
    return _str_method_size(str(s), "replace", (str(old), str(new), -1 if count is None else count), {})


def _batch_size(value: Any, linecount: Any, fill_with: Any = None) -> int:
    return _int(linecount) * (1 + (size_of(fill_with) if fill_with is not None else 0))


def _slice_size(value: Any, slices: Any, fill_with: Any = None) -> int:
    return _int(slices) * (1 + (size_of(fill_with) if fill_with is not None else 0))


@pass_eval_context
def _join(eval_ctx: Any, value: Any, d: str = "", attribute: Any = None) -> str:
    items = list(value)  # a generator from another filter is budgeted
    if size_of(items) + len(items) * len(str(d)) > MAX_VALUE:
        raise _too_large("the result of filter 'join'")
    return filters.sync_do_join(eval_ctx, items, d, attribute)


def _range(*args: int) -> range:
    numbers = range(*args)
    try:
        count = len(numbers)
    except OverflowError:
        count = MAX_RANGE + 1
    if count > MAX_RANGE:
        raise TemplateTooLarge(f"too large: range({', '.join(map(str, args))}) has more than {MAX_RANGE} items")
    return numbers


class BoundedSandbox(ImmutableSandboxedEnvironment):
    """Jinja2's immutable sandbox with the limits of this module."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"+", "*", "%", "**"})

    def __init__(self, **options: Any) -> None:
        # optimized=False: nothing is evaluated while compiling (constant folding would run filters).
        super().__init__(optimized=False, finalize=_finalize, **options)
        replaced: dict[str, Callable[..., Any]] = {
            "center": _estimated("center", filters.do_center, _center_size),
            "indent": _estimated("indent", filters.do_indent, _indent_size),
            "format": _estimated("format", filters.do_format, _format_size),
            "wordwrap": _estimated("wordwrap", filters.do_wordwrap, _wordwrap_size),
            "replace": _estimated("replace", filters.do_replace, _replace_size),
            "batch": _estimated("batch", filters.do_batch, _batch_size),
            "slice": _estimated("slice", filters.sync_do_slice, _slice_size),
            "join": _join,
        }
        self.filters = {
            name: _bounded_filter(name, replaced.get(name, function))
            for name, function in self.filters.items()
            if name != "urlize"
        }
        for name in ("lipsum", "namespace"):
            self.globals.pop(name, None)
        self.globals["range"] = _range

    def bounded_concat(self, parts: tuple[Any, ...]) -> str:
        if sum(size_of(part) for part in parts) > MAX_VALUE:
            raise _too_large("the result of '~'")
        return check_size("".join(map(str, parts)), "the result of '~'")

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        what = f"the result of '{operator}'"
        if operator == "**":
            if isinstance(right, (int, float)) and abs(right) > MAX_EXPONENT:
                raise TemplateTooLarge(f"too large: exponent {right} is larger than {MAX_EXPONENT}")
            if _int(left) and _int(right) > 0 and abs(left).bit_length() * right > MAX_INT_BITS:
                raise TemplateTooLarge(f"too large: {what} would have more than {MAX_INT_BITS} bits")
        elif operator == "*":
            if _int(left) and _int(right) and abs(left).bit_length() + abs(right).bit_length() > MAX_INT_BITS:
                raise TemplateTooLarge(f"too large: {what} would have more than {MAX_INT_BITS} bits")
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and size_of(sequence) * max(0, _int(times)) > MAX_VALUE:
                    raise _too_large(what)
        elif operator == "+":
            if isinstance(left, (str, list, tuple)) and size_of(left) + size_of(right) > MAX_VALUE:
                raise _too_large(what)
        elif operator == "%" and isinstance(left, str) and _printf_size(left, right) > MAX_VALUE:
            raise _too_large(what)
        return check_size(super().call_binop(context, operator, left, right), what)

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Every call in a template: arguments and result checked; str methods that make text bigger
        (center, ljust, expandtabs, join, replace, translate, format …) estimated first."""
        method = getattr(__obj, "__wrapped__", __obj)  # str.format comes wrapped by the sandbox
        owner = getattr(method, "__self__", None)
        name = getattr(method, "__name__", "")
        label = f"{type(owner).__name__}.{name}()" if isinstance(owner, (str, bytes, int)) else f"{name}()"
        what = f"the result of {label}"
        for value in (*args, *kwargs.values()):
            check_size(value, f"an argument of {label}")
        if isinstance(owner, str) and name in ("format", "format_map"):
            check_size(owner, label)
            mapping = args[0] if name == "format_map" and args else kwargs
            return _Formatter(__self, what).vformat(owner, () if name == "format_map" else args, mapping)
        if isinstance(owner, (str, bytes)):
            if name == "join" and args:
                items = list(_budgeted(iter(args[0]), what))
                if size_of(items) + len(items) * len(owner) > MAX_VALUE:
                    raise _too_large(what)
                args = (items, *args[1:])
            elif _str_method_size(owner, name, args, kwargs) > MAX_VALUE:
                raise _too_large(what)
        elif isinstance(owner, int) and name == "to_bytes" and max(map(_int, (0, *args, *kwargs.values()))) > MAX_VALUE:
            raise _too_large(what)
        return check_size(super().call(__context, __obj, *args, **kwargs), what)


def _finalize(value: Any) -> Any:
    """Every `{{ … }}` output of a template, before it becomes text."""
    if size_of(value, MAX_OUTPUT) > MAX_OUTPUT:
        raise output_too_large()
    return value
