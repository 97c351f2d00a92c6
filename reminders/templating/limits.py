"""Bounds on every render: a time limit, an output limit, and the operations that blow up first.

Jinja's sandbox keeps templates away from Python internals and caps `range()`, but a template
can still ask for `9 ** 9 ** 9`, `"x" * 10 ** 9`, `"%999999999d"`, `"x".center(10 ** 9)` or
loops nested five deep. `BoundedSandbox` refuses the first four before Python computes them,
and every loop step, call and output chunk checks the render's deadline and size.
"""

from __future__ import annotations

import re
import string
import time
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from jinja2 import nodes, pass_eval_context
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, markup_join, str_join
from jinja2.sandbox import SandboxedEnvironment

MAX_RENDER_SECONDS = 1.0
MAX_OUTPUT_CHARS = 100_000
MAX_POWER_BITS = 4_096
LOOP_FILTER = "_bounded_loop"
CONCAT_FILTER = "_bounded_concat"
# Filters whose numeric arguments are output widths.
WIDTH_FILTERS = ("center", "indent", "wordwrap", "truncate")
# str methods whose integer arguments are output widths.
WIDTH_METHODS = ("center", "ljust", "rjust", "zfill", "expandtabs")
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[#0\- +]*(\*|\d+)?(?:\.(\*|\d+))?")


class RenderLimitExceeded(Exception):
    """A render went over a limit; the renderer reports it as a TemplateError with the line."""


@dataclass
class _Budget:
    deadline: float
    output: int = 0


_budget: ContextVar[_Budget | None] = ContextVar("render_budget", default=None)


def tick() -> None:
    """Stop the render when its time is up."""
    budget = _budget.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise RenderLimitExceeded(
            f"took longer than {MAX_RENDER_SECONDS:g} s to render (loops too large?)"
        )


def count_output(value: Any) -> Any:
    """Jinja's `finalize` hook: every `{{ ... }}` adds to the render's output budget."""
    budget = _budget.get()
    if budget is not None:
        budget.output += len(value) if isinstance(value, str) else 8
        if budget.output > MAX_OUTPUT_CHARS:
            raise RenderLimitExceeded(f"renders to more than {MAX_OUTPUT_CHARS:,} characters")
    return value


def bounded_output(chunks: Iterable[str]) -> str:
    """Join rendered chunks, stopping as soon as the output passes MAX_OUTPUT_CHARS."""
    parts: list[str] = []
    total = 0
    for count, chunk in enumerate(chunks):
        total += len(chunk)
        if total > MAX_OUTPUT_CHARS:
            raise RenderLimitExceeded(f"renders to more than {MAX_OUTPUT_CHARS:,} characters")
        parts.append(chunk)
        if count % 256 == 255:
            tick()
    return "".join(parts)


class render_budget:
    """Give the renders inside the `with` block one time budget."""

    def __enter__(self) -> None:
        self._token = _budget.set(_Budget(time.monotonic() + MAX_RENDER_SECONDS))

    def __exit__(self, *exc: object) -> None:
        _budget.reset(self._token)


def _too_wide(width: Any) -> bool:
    return isinstance(width, int) and not isinstance(width, bool) and width > MAX_OUTPUT_CHARS


def _check_size(value: Any) -> Any:
    if isinstance(value, str | list | tuple) and len(value) > MAX_OUTPUT_CHARS:
        raise RenderLimitExceeded(f"builds a value of more than {MAX_OUTPUT_CHARS:,} items")
    return value


def check_percent_format(text: str) -> None:
    """Refuse `%`-format widths past the output limit and widths taken from arguments (`*`)."""
    for match in _PERCENT_SPEC.finditer(text):
        for width in match.groups():
            if width == "*" or (width and int(width) > MAX_OUTPUT_CHARS):
                raise RenderLimitExceeded(f"format width in {match.group()!r} is too large")


def check_brace_format(text: str) -> None:
    """Refuse `{:N}` widths past the output limit and widths taken from arguments (`{:{}}`)."""
    for _, _, spec, _ in string.Formatter().parse(text):
        if not spec:
            continue
        if "{" in spec or any(int(n) > MAX_OUTPUT_CHARS for n in re.findall(r"\d+", spec)):
            raise RenderLimitExceeded(f"format width in {{:{spec}}} is too large")


def _check_power(base: Any, exponent: Any) -> None:
    ints = isinstance(base, int) and isinstance(exponent, int)
    if ints and exponent > 0 and base.bit_length() * exponent > MAX_POWER_BITS:
        raise RenderLimitExceeded(f"{base} ** {exponent} is too large a number")


def _check_repeat(left: Any, right: Any) -> None:
    for seq, times in ((left, right), (right, left)):
        sized = isinstance(seq, str | list | tuple) and isinstance(times, int)
        if sized and len(seq) * times > MAX_OUTPUT_CHARS:
            raise RenderLimitExceeded(f"repeats a value to more than {MAX_OUTPUT_CHARS:,} items")


def _check_replace(text: str, args: tuple[Any, ...]) -> None:
    if len(args) >= 2 and isinstance(args[0], str) and isinstance(args[1], str):
        old, new = args[0], args[1]
        growth = (text.count(old) if old else len(text) + 1) * max(len(new) - len(old), 0)
        if len(text) + growth > MAX_OUTPUT_CHARS:
            raise RenderLimitExceeded(f"replace() builds more than {MAX_OUTPUT_CHARS:,} characters")


def _check_join(items: Any, separator: Any = "", what: str = "join") -> None:
    if isinstance(items, list | tuple):
        pieces = sum(len(x) if isinstance(x, str) else 1 for x in items)
        if pieces + len(items) * len(str(separator)) > MAX_OUTPUT_CHARS:
            raise RenderLimitExceeded(f"{what} builds more than {MAX_OUTPUT_CHARS:,} characters")


def _check_indent(text: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    sized = isinstance(text, str) and isinstance(width, int)
    if sized and len(text) + width * (text.count("\n") + 1) > MAX_OUTPUT_CHARS:
        raise RenderLimitExceeded(f"indent builds more than {MAX_OUTPUT_CHARS:,} characters")


@pass_eval_context
def _bounded_concat(eval_ctx: EvalContext, items: list[Any]) -> str:
    """`a ~ b`: the pieces' total checked before joining, escaped as Jinja's own `~` would."""
    _check_join([str(item) for item in items], what="~")
    return markup_join(items) if eval_ctx.autoescape else str_join(items)


def _bounded_loop(items: Any) -> Iterator[Any]:
    """Every for-loop iterates through this: each step checks the deadline."""
    for item in items:
        tick()
        yield item


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    def bounded(*args: Any, **kwargs: Any) -> Any:
        tick()
        if name in WIDTH_FILTERS and any(_too_wide(a) for a in (*args[1:], *kwargs.values())):
            raise RenderLimitExceeded(f"the width given to |{name} is too large")
        if name == "format" and args and isinstance(args[0], str):
            check_percent_format(args[0])
        elif name == "replace" and args and isinstance(args[0], str):
            _check_replace(args[0], args[1:])
        elif name == "join" and args:
            _check_join(*args[:2])
        elif name == "indent" and args:
            _check_indent(*args, **kwargs)
        return _check_size(func(*args, **kwargs))

    for attribute in ("jinja_pass_arg", "__name__", "__doc__"):
        if hasattr(func, attribute):
            setattr(bounded, attribute, getattr(func, attribute))
    return bounded


class BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox plus a time and output budget on each render (see the module doc)."""

    intercepted_binops = frozenset({"**", "*", "%", "+"})

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=count_output, **options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.filters[LOOP_FILTER] = _bounded_loop
        self.filters[CONCAT_FILTER] = _bounded_concat
        self.globals.pop("lipsum", None)

    def add_filter(self, name: str, func: Callable[..., Any]) -> None:
        """Register a filter under the same bounds as the built-in ones."""
        self.filters[name] = _bounded_filter(name, func)

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        """Parse, then route every loop's items and every `~` through the checks."""
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):
            loop.iter = nodes.Filter(loop.iter, LOOP_FILTER, [], [], None, None, lineno=loop.lineno)
        for concat in list(tree.find_all(nodes.Concat)):
            pieces = nodes.List(concat.nodes, lineno=concat.lineno)
            concat.nodes = [
                nodes.Filter(pieces, CONCAT_FILTER, [], [], None, None, lineno=concat.lineno)
            ]
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """`**` and `*` within bounds, `%`-formatting with sane widths."""
        tick()
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            _check_repeat(left, right)
        elif operator == "+" and isinstance(left, str | list | tuple):
            if isinstance(right, str | list | tuple) and len(left) + len(right) > MAX_OUTPUT_CHARS:
                raise RenderLimitExceeded(f"builds a value of more than {MAX_OUTPUT_CHARS:,} items")
        elif operator == "%" and isinstance(left, str):
            check_percent_format(left)
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """Any call from a template: widths and replace() checked first, the result's size after."""
        tick()
        owner = getattr(__obj, "__self__", None)
        if isinstance(owner, str):
            method = getattr(__obj, "__name__", "")
            if method in WIDTH_METHODS and any(_too_wide(a) for a in args):
                raise RenderLimitExceeded(f"the width given to {method}() is too large")
            if method == "replace":
                _check_replace(owner, args)
        return _check_size(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """str.format with its widths checked."""
        wrapped = super().wrap_str_format(value)
        if wrapped is not None:
            check_brace_format(value.__self__)
        return wrapped
