"""The restricted template engine and the limits every render runs under.

Marketers write the templates and customers write the data, and both can make a render
huge: `|ljust:"500000000"` took 1.6 GB, seven nested loops 21 s, and every |addslashes
doubles the backslashes it is given. So the engine is bounded here, in one place: a builtin
library of whitelisted tags and filters only, each filter refusing to make a value past the
budget, and {% for %} counting its passes and the text they add."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

from django.conf import settings
from django.template import (
    Context,
    Engine,
    Library,
    Node,
    NodeList,
    defaultfilters,
    defaulttags,
)
from django.template.base import FilterExpression, Parser, Token
from django.template.smartif import TokenBase

ALLOWED_TAGS = frozenset(
    {
        "if",
        "for",
        "with",
        "comment",
        "firstof",
        "cycle",
        "resetcycle",
        "ifchanged",
        "spaceless",
        "verbatim",
        "templatetag",
        "widthratio",
    }
)
# Parsed by their opening tag, never looked up in the library.
INNER_TAGS = frozenset({"elif", "else", "empty"}) | {f"end{tag}" for tag in ALLOWED_TAGS}

ALLOWED_FILTERS = frozenset(
    {
        "add",
        "addslashes",
        "capfirst",
        "center",
        "cut",
        "date",
        "default",
        "default_if_none",
        "divisibleby",
        "escape",
        "filesizeformat",
        "first",
        "floatformat",
        "force_escape",
        "get_digit",
        "iriencode",
        "join",
        "last",
        "length",
        "linebreaks",
        "linebreaksbr",
        "ljust",
        "lower",
        "make_list",
        "pluralize",
        "rjust",
        "slice",
        "slugify",
        "stringformat",
        "striptags",
        "time",
        "timesince",
        "timeuntil",
        "title",
        "truncatechars",
        "truncatewords",
        "upper",
        "urlencode",
        "urlize",
        "wordcount",
        "wordwrap",
        "yesno",
    }
)


# Filters whose argument is a size: it must be a number written in the template, at most
# RENDER_MAX_FILTER_WIDTH. (wordwrap, truncatechars and friends only ever shorten or add a
# line break per word, which the size checks below bound.)
SIZED_FILTERS = {
    "ljust": "characters",
    "center": "characters",
    "rjust": "characters",
    "stringformat": "characters",
    "floatformat": "decimal places",
}


class RenderLimitError(Exception):
    """A render that went past a limit; the message says which one and names its setting."""


@dataclass
class Budget:
    max_chars: int
    max_iterations: int
    deadline: float
    iterations: int = 0
    loop_output: int = 0

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise RenderLimitError(
                f"rendering took longer than {settings.RENDER_MAX_SECONDS} seconds "
                "(RENDER_MAX_SECONDS)"
            )

    def too_long(self) -> RenderLimitError:
        return RenderLimitError(
            f"the rendered text passes the limit of {self.max_chars} characters "
            "(RENDER_MAX_EMAIL_BYTES)"
        )


def new_budget() -> Budget:
    return Budget(
        max_chars=settings.RENDER_MAX_EMAIL_BYTES,
        max_iterations=settings.RENDER_MAX_LOOP_ITERATIONS,
        deadline=time.monotonic() + settings.RENDER_MAX_SECONDS,
    )


# The budget of the field being rendered. Filters are called with their value and argument
# only, so they find it here rather than in the template context.
_BUDGET: ContextVar[Budget | None] = ContextVar("cadence_render_budget", default=None)


def current_budget() -> Budget:
    return _BUDGET.get() or new_budget()


@contextmanager
def render_budget() -> Iterator[Budget]:
    """A fresh budget for the field rendered inside the block."""
    budget = new_budget()
    reset = _BUDGET.set(budget)
    try:
        yield budget
    finally:
        _BUDGET.reset(reset)


def _size(value: Any, limit: int) -> int:
    """Roughly the characters `value` would print as, counted without printing it (a tuple
    can hold a million references to one long string); stops counting past `limit`."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, Mapping):
            total += len(item)
            if total <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item)
            if total <= limit:
                stack.extend(item)
        else:
            total += 8  # a number, a date, None: short when printed
    return total


def _bounded_filter(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, refusing to make a value longer than the budget allows. functools.wraps
    keeps the flags Django reads (is_safe, needs_autoescape, expects_localtime) and, through
    __wrapped__, the signature it checks arguments against."""

    @functools.wraps(function)
    def bounded(value: Any, *args: Any, **kwargs: Any) -> Any:
        budget = current_budget()
        budget.check_time()
        if name == "join" and args:
            # "sep".join(a million items) would be built before it could be measured.
            items = len(value) if isinstance(value, list | tuple) else 0
            if _size(value, budget.max_chars) + items * len(str(args[0])) > budget.max_chars:
                raise budget.too_long()
        result = function(value, *args, **kwargs)
        if _size(result, budget.max_chars) > budget.max_chars:
            raise budget.too_long()
        return result

    return bounded


class CountedSequence:
    """A {% for %} loop's sequence: each time it is resolved (once per pass of an enclosing
    loop) its length is spent from the render's iteration budget."""

    def __init__(self, inner: FilterExpression) -> None:
        self.inner = inner

    def resolve(self, context: Context, ignore_failures: bool = False) -> Any:
        values = self.inner.resolve(context, ignore_failures=ignore_failures)
        if values is None:
            return values
        if not hasattr(values, "__len__"):
            values = list(values)
        budget = current_budget()
        budget.iterations += len(values)
        if budget.iterations > budget.max_iterations:
            raise RenderLimitError(
                f"loops ran more than {budget.max_iterations} times in all "
                "(RENDER_MAX_LOOP_ITERATIONS)"
            )
        return values

    def __str__(self) -> str:
        return str(self.inner)


class _LoopBody(Node):
    """One pass of a loop body: the text it adds is counted as it is made, so a loop stops
    at the size cap instead of building the whole output first. A nested loop's text is
    counted once: the outer pass replaces what its inner passes added with its own total."""

    child_nodelists = ("nodelist",)

    def __init__(self, nodelist: NodeList) -> None:
        self.nodelist = nodelist

    def render(self, context: Context) -> str:
        budget = current_budget()
        budget.check_time()
        before = budget.loop_output
        output = self.nodelist.render(context)
        budget.loop_output = before + len(output)
        if budget.loop_output > budget.max_chars:
            raise budget.too_long()
        return output


def _bounded_for(parser: Parser, token: Token) -> Node:
    node = defaulttags.do_for(parser, token)
    assert isinstance(node, defaulttags.ForNode)
    sequence, body = node.sequence, node.nodelist_loop
    assert isinstance(sequence, FilterExpression) and isinstance(body, NodeList)
    node.sequence = CountedSequence(sequence)  # type: ignore[assignment]
    node.nodelist_loop = NodeList([_LoopBody(body)])
    return node


def _safe_library() -> Library:
    library = Library()
    for name in ALLOWED_TAGS:
        library.tags[name] = defaulttags.register.tags[name]
    library.tags["for"] = _bounded_for
    for name in ALLOWED_FILTERS:
        library.filters[name] = _bounded_filter(name, defaultfilters.register.filters[name])
    return library


class _RestrictedEngine(Engine):
    # Engine always adds its default builtins (defaulttags, defaultfilters, loader_tags);
    # emptying them is what keeps include, extends, load and friends out.
    default_builtins: ClassVar[list[str]] = []


@lru_cache(maxsize=1)
def restricted_engine() -> Engine:
    engine = _RestrictedEngine(
        dirs=[], app_dirs=False, loaders=[], libraries={}, builtins=[], autoescape=True
    )
    engine.template_builtins = [_safe_library()]
    engine.template_libraries = {}
    return engine


def node_children(value: Any, *, conditions: bool = True) -> Iterable[Any]:
    """What a compiled template's tree holds below `value`: the items of lists (a NodeList
    is one), tuples and dicts, and the attributes of nodes and loop sequences (and, with
    `conditions`, of {% if %} conditions and their operands). Leaves have none."""
    if isinstance(value, list | tuple):
        return value
    if isinstance(value, dict):
        return value.values()
    if isinstance(value, Node | CountedSequence) or (conditions and isinstance(value, TokenBase)):
        return vars(value).values()
    return ()
