"""Missing values in links.

A value missing from a link makes a broken link ("https://shop.example.com/p/"), so a
variable inside a URL (an href or src attribute, or a URL written in the text) that renders
empty holds the message with a RenderError, unless it declares a fallback with |default.
Outside links a missing value renders blank, as Django does."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.template import Context, NodeList, Template
from django.template.base import (
    DebugLexer,
    Parser,
    TokenType,
    Variable,
    VariableNode,
    render_value_in_context,
)

from campaigns.rendering.engine import node_children

_URL_ATTRIBUTE = re.compile(
    r"""\b(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE
)
_URL_IN_TEXT = re.compile(r"""(?:https?://|www\.)[^\s"'<>]*""", re.IGNORECASE)
_HOLD_MISSING: ContextVar[bool] = ContextVar("cadence_hold_missing", default=True)


@contextmanager
def missing_values_held(hold: bool) -> Iterator[None]:
    """Inside the block an empty variable in a link raises MissingValueError (`hold`), or
    renders blank (template validation on sample contacts, who may lack the value)."""
    reset = _HOLD_MISSING.set(hold)
    try:
        yield
    finally:
        _HOLD_MISSING.reset(reset)


class MissingValueError(Exception):
    """A variable inside a link rendered empty and declares no fallback."""

    def __init__(self, path: str, lineno: int) -> None:
        self.path = path
        self.lineno = lineno
        super().__init__(
            f"missing_value: {path} is empty in a link (line {lineno}); "
            'give it a fallback with |default:"..."'
        )


class _LinkVariableNode(VariableNode):
    """{{ ... }} inside a URL: an empty value is an error, not a blank."""

    def render(self, context: Context) -> str:
        output = self.filter_expression.resolve(context)
        if _HOLD_MISSING.get() and (output is None or not str(output).strip()):
            names = {
                getattr(function, "__name__", "") for function, _ in self.filter_expression.filters
            }
            if "default" not in names:
                variable = self.filter_expression.var
                path = variable.var if isinstance(variable, Variable) else str(variable)
                lineno = self.token.lineno if self.token is not None else 0
                raise MissingValueError(str(path), lineno or 0)
        return str(render_value_in_context(output, context))


class PositionedTemplate(Template):
    """A Template whose tokens keep their place in the source (as in debug mode), so that the
    variables inside links can be found."""

    def compile_nodelist(self) -> NodeList:
        parser = Parser(
            DebugLexer(self.source).tokenize(),
            self.engine.template_libraries,
            self.engine.template_builtins,
            self.origin,
        )
        nodelist = parser.parse()
        self.extra_data = parser.extra_data
        return nodelist


def _link_spans(source: str) -> list[tuple[int, int]]:
    """Where URLs are in the source: tags and variables are masked first (with characters
    that are neither quotes nor spaces), so `{{ x|default:"a b" }}` does not end a URL."""
    masked = list(source)
    for token in DebugLexer(source).tokenize():
        if token.token_type != TokenType.TEXT and token.position is not None:
            start, end = token.position
            masked[start:end] = "x" * (end - start)
    text = "".join(masked)
    spans = []
    for match in _URL_ATTRIBUTE.finditer(text):
        group = next(index for index in (1, 2, 3) if match.group(index) is not None)
        spans.append(match.span(group))
    spans.extend(match.span() for match in _URL_IN_TEXT.finditer(text))
    return spans


def mark_link_variables(template: Template, source: str) -> None:
    """Swap each {{ ... }} that sits inside a URL for a _LinkVariableNode, in place."""
    spans = _link_spans(source)
    if spans:
        _LinkMarker(spans).walk(template.nodelist)


class _LinkMarker:
    def __init__(self, spans: list[tuple[int, int]]) -> None:
        self.spans = spans
        self.seen: set[int] = set()

    def in_link(self, node: VariableNode) -> bool:
        position = getattr(getattr(node, "token", None), "position", None)
        return position is not None and any(a <= position[0] < b for a, b in self.spans)

    def walk(self, value: Any) -> None:
        if id(value) in self.seen or isinstance(value, str | int | float | bool | None):
            return
        self.seen.add(id(value))
        if isinstance(value, list):  # NodeList is a list: its items can be swapped in place
            for index, item in enumerate(value):
                if type(item) is VariableNode and self.in_link(item):
                    value[index] = self.link_node(item)
                else:
                    self.walk(item)
            return
        for item in node_children(value, conditions=False):
            self.walk(item)

    @staticmethod
    def link_node(item: VariableNode) -> _LinkVariableNode:
        link = _LinkVariableNode(item.filter_expression)
        link.token, link.origin = item.token, item.origin
        return link
