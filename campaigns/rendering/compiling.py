"""Compiling a marketer's template: the checks at save that refuse what could never render
as meant (a forbidden tag, a variable outside the whitelisted context, a misspelt field, a
loop nested too deep, a size taken from data) and the cache of compiled templates."""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.template import Node, Template, TemplateSyntaxError, defaulttags
from django.template.base import FilterExpression, Lexer, TokenType, Variable, filter_re

from campaigns.rendering.engine import (
    ALLOWED_TAGS,
    INNER_TAGS,
    SIZED_FILTERS,
    node_children,
    restricted_engine,
)
from campaigns.rendering.links import PositionedTemplate, mark_link_variables

_INVALID_FILTER = re.compile(r"Invalid filter: '([^']+)'")


# The names a template can start a variable with: everything else (settings, request,
# anything Django might put in a context elsewhere) is refused when the template is saved.
CONTEXT_ROOTS = frozenset(
    {
        "contact",
        "campaign",
        "last_viewed",
        "last_order",
        "unsubscribe_url",
        "preferences_url",
        "sender",
        "now",
        "forloop",
    }
)
_WORDS_NOT_VARIABLES = frozenset(
    {"and", "or", "not", "in", "is", "as", "reversed", "None", "True", "False", "only"}
)
_PATH = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*$")


def _variable_root(expression: str) -> str | None:
    """The first name of a variable expression (`contact` in `contact.first_name|upper`), or
    None for literals."""
    head = expression.split("|", 1)[0].strip()
    if not _PATH.match(head):
        return None
    root = head.split(".", 1)[0]
    return None if root in _WORDS_NOT_VARIABLES else root


# What each variable of the context holds, for the check at save. Contact and campaign
# fields are a fixed list, so a misspelt one is refused with the closest name; custom
# attributes, event properties (last_viewed, last_order), the date (now) and loop variables
# are open-ended data, allowed at save and covered at send by the rule on links (below).
_CONTACT_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "locale",
    "timezone",
    "country",
)
_CONTAINERS = {
    "contact": (*_CONTACT_FIELDS, "attributes"),
    "campaign": ("name", "slug"),
}
_OPEN_PATHS = frozenset({"contact.attributes", "last_viewed", "last_order", "now", "forloop"})
_LEAVES = frozenset(
    {f"contact.{name}" for name in _CONTACT_FIELDS}
    | {"campaign.name", "campaign.slug", "unsubscribe_url", "preferences_url", "sender"}
)
_KNOWN_PATHS = sorted(_LEAVES | _OPEN_PATHS | set(_CONTAINERS))


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return matches[0] if matches else None


def _unknown_path(path: str) -> str | None:
    """The part of a path into the context that names nothing there (`contact.frist_name` of
    `contact.frist_name.0`), or None. A leaf (a text field) may only be indexed by number."""
    parts = path.split(".")
    for end in range(1, len(parts) + 1):
        prefix = ".".join(parts[:end])
        if prefix in _OPEN_PATHS:
            return None
        if prefix in _LEAVES:
            for index in range(end, len(parts)):
                if not parts[index].isdigit():
                    return ".".join(parts[: index + 1])
            return None
        if prefix not in _CONTAINERS:
            return prefix
    return None


def _paths(expression: str) -> list[str]:
    """The variable paths an expression reads: its head (`contact.first_name` in
    `contact.first_name|default:last_viewed.product_name`) and its filters' arguments."""
    found: list[str] = []
    head = expression.split("|", 1)[0].strip()
    if _PATH.match(head):
        found.append(head)
    for match in filter_re.finditer(expression):
        argument = match.group("var_arg")
        if argument and _PATH.match(argument):
            found.append(argument)
    return found


def _check_roots(expressions: list[str], allowed: set[str], lineno: int) -> None:
    local = allowed - CONTEXT_ROOTS
    for expression in expressions:
        for part in re.split(r"[=,]", expression):
            for path in _paths(part):
                root = _variable_root(path)
                if root is None:
                    continue
                if root not in allowed:
                    roots = ", ".join(sorted(CONTEXT_ROOTS - {"forloop"}))
                    guess = _closest(root, CONTEXT_ROOTS - {"forloop"})
                    hint = f"; did you mean {guess}? templates" if guess else ": templates"
                    raise TemplateSyntaxError(
                        f"unknown variable {root!r} (line {lineno}){hint} can use {roots}"
                    )
                if root in local:
                    continue
                unknown = _unknown_path(path)
                if unknown is None:
                    continue
                parent, _, name = unknown.rpartition(".")
                if parent in _CONTAINERS:
                    sibling = _closest(name, _CONTAINERS[parent])
                    guess = f"{parent}.{sibling}" if sibling else None
                else:  # a misspelt root-level name, or a name after a text field
                    guess = parent or _closest(unknown, _KNOWN_PATHS)
                if guess:
                    raise TemplateSyntaxError(
                        f"{unknown} is not a known variable; did you mean {guess}? (line {lineno})"
                    )
                fields = ", ".join(_CONTAINERS.get(parent, ()))
                known = f": {parent} has {fields}" if fields else ""
                raise TemplateSyntaxError(
                    f"{unknown} is not a known variable (line {lineno}){known}"
                )


def _check_tags(source: str) -> None:
    """Reject forbidden tags by name before Django's parser gives a vaguer message."""
    for token in Lexer(source).tokenize():
        if token.token_type != TokenType.BLOCK:
            continue
        parts = token.split_contents()
        name = parts[0] if parts else ""
        if name not in ALLOWED_TAGS and name not in INNER_TAGS:
            raise TemplateSyntaxError(f"{{% {name} %}} is not allowed (line {token.lineno})")


def _check_variables(source: str) -> None:
    """Reject any variable outside the whitelisted context ({{ settings.SECRET_KEY }}
    included): such a template could never render what its author meant, and is refused
    when it is saved rather than rendering blanks to customers."""
    allowed = set(CONTEXT_ROOTS)
    for token in Lexer(source).tokenize():
        lineno = token.lineno or 0
        if token.token_type == TokenType.VAR:
            _check_roots([token.contents], allowed, lineno)
            continue
        if token.token_type != TokenType.BLOCK:
            continue
        parts = token.split_contents()
        name, arguments = (parts[0], parts[1:]) if parts else ("", [])
        if name == "for" and "in" in arguments:
            split = arguments.index("in")
            names = " ".join(arguments[:split]).split(",")
            allowed.update(n.strip() for n in names if n.strip())
            arguments = arguments[split + 1 :]
        elif name == "with":
            if "as" in arguments:
                allowed.add(arguments[-1])
                arguments = arguments[:-2]
            else:
                allowed.update(arg.split("=", 1)[0] for arg in arguments if "=" in arg)
                arguments = [arg.split("=", 1)[1] for arg in arguments if "=" in arg]
        if name in {"if", "elif", "for", "with"}:
            _check_roots(arguments, allowed, lineno)


def _sized_argument(name: str, argument: Any) -> int | None:
    """The size a SIZED_FILTERS argument asks for (None when it asks for none)."""
    text = str(argument).strip()
    if name == "floatformat":
        text = text.rstrip("gu")
    if name == "stringformat":
        # A format such as "-500000000.3f": its widest width or precision.
        numbers = [int(n) for n in re.findall(r"\d+", text)]
        return max(numbers, default=None)
    try:
        return abs(int(text))
    except ValueError:
        return None  # not a number: Django renders it as an error or ignores it


def _check_expression(expression: FilterExpression, lineno: int, max_width: int) -> None:
    for function, arguments in expression.filters:
        name = getattr(function, "__name__", "")
        if name not in SIZED_FILTERS:
            continue
        for is_lookup, argument in arguments:
            if is_lookup and isinstance(argument, Variable):
                if argument.lookups is not None:
                    raise TemplateSyntaxError(
                        f"|{name} needs a number written in the template, not a variable "
                        f"(line {lineno})"
                    )
                argument = argument.literal
            size = _sized_argument(name, argument)
            if size is not None and size > max_width:
                raise TemplateSyntaxError(
                    f"|{name} allows at most {max_width} {SIZED_FILTERS[name]}, not {size} "
                    f"(line {lineno})"
                )


def _check_limits(template: Template, *, max_depth: int, max_width: int) -> None:
    """Refuse what no render should be asked to do: loops nested deeper than max_depth and
    padding or format sizes over max_width, or taken from data. Walks every node and every
    expression the parser built (conditions, with, cycle, firstof, widthratio included)."""
    _LimitScan(max_depth=max_depth, max_width=max_width).scan(template.nodelist, 0, 1)


class _LimitScan:
    def __init__(self, *, max_depth: int, max_width: int) -> None:
        self.max_depth = max_depth
        self.max_width = max_width
        self.seen: set[int] = set()

    def scan(self, value: Any, depth: int, lineno: int) -> None:
        if id(value) in self.seen or isinstance(value, str | int | float | bool | None):
            return
        self.seen.add(id(value))
        if isinstance(value, FilterExpression):
            _check_expression(value, lineno, self.max_width)
            return
        if isinstance(value, Node):
            token = getattr(value, "token", None)
            lineno = getattr(token, "lineno", None) or lineno
            if isinstance(value, defaulttags.ForNode):
                depth = self.enter_loop(value, depth, lineno)
        for item in node_children(value):
            self.scan(item, depth, lineno)

    def enter_loop(self, loop: defaulttags.ForNode, depth: int, lineno: int) -> int:
        # {% empty %} runs instead of the loop, at the loop's own depth.
        self.scan(loop.nodelist_empty, depth, lineno)
        depth += 1
        if depth > self.max_depth:
            raise TemplateSyntaxError(
                f"{{% for %}} loops can be nested at most {self.max_depth} deep; this one "
                f"is {depth} deep (line {lineno})"
            )
        return depth


@lru_cache(maxsize=1024)
def _compile_bounded(source: str, max_depth: int, max_width: int) -> Template:
    _check_tags(source)
    try:
        template = PositionedTemplate(source, engine=restricted_engine())
    except TemplateSyntaxError as exc:
        message = str(exc)
        match = _INVALID_FILTER.search(message)
        if match:
            raise TemplateSyntaxError(f"the filter |{match.group(1)} is not allowed") from exc
        raise
    _check_variables(source)
    _check_limits(template, max_depth=max_depth, max_width=max_width)
    mark_link_variables(template, source)
    return template


def compile_template(source: str) -> Template:
    """The compiled template, checked and cached; raises TemplateSyntaxError naming what is
    wrong and on which line."""
    # The limits are part of the cache key: a changed setting applies to cached templates.
    return _compile_bounded(
        source, settings.RENDER_MAX_LOOP_DEPTH, settings.RENDER_MAX_FILTER_WIDTH
    )
