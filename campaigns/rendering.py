"""Personalisation: message templates rendered in a restricted Django template engine.

Templates are written by marketers and fed data that customers control (names, custom
attributes, event properties), so the engine is locked down:

- a dedicated ``Engine`` with no template loaders, no loadable libraries and a builtin library
  of whitelisted tags and filters only: ``{% load %}``, ``{% include %}``, ``{% extends %}``,
  ``{% debug %}``, ``{% url %}``, ``{% csrf_token %}``, ``{% autoescape %}`` and the ``safe``
  filter do not exist here, and a template using them is rejected with the tag named;
- the context is built from plain dicts of whitelisted fields, never model instances, so
  nothing reaches settings, managers or secrets (``{{ settings.SECRET_KEY }}`` is empty);
- HTML bodies are autoescaped; subject, preheader, text and SMS are not HTML and are rendered
  without escaping (but from the same whitelisted context);
- rendering is bounded (docs/campaigns.md, "Limits"): padding and format widths are numbers
  written in the template and at most RENDER_MAX_FILTER_WIDTH, loops nest at most
  RENDER_MAX_LOOP_DEPTH deep (both refused when the template is saved), loops run at most
  RENDER_MAX_LOOP_ITERATIONS times in all, no filter makes a value and no loop produces text
  past RENDER_MAX_EMAIL_BYTES characters, and a finished message over RENDER_MAX_EMAIL_BYTES
  (email) or RENDER_MAX_SMS_CHARS (SMS) is a RenderError, so it is never sent;
- no silent blanks (docs/campaigns.md, "Variables"): a name or a contact/campaign field the
  context does not have is refused at save with the closest known name, and a variable in a
  link that renders empty without |default is a RenderError, so the message is held;
- an error message never carries a customer's signed link: previews and validation use
  placeholder links, and errors are stripped of the context and of anything token-shaped.
"""

from __future__ import annotations

import datetime as dt
import difflib
import functools
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from html import escape as html_escape
from html.parser import HTMLParser
from types import MappingProxyType
from typing import Any, ClassVar

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.template import (
    Context,
    Engine,
    Library,
    Node,
    NodeList,
    Template,
    TemplateSyntaxError,
    VariableDoesNotExist,
    defaultfilters,
    defaulttags,
)
from django.template.base import (
    DebugLexer,
    FilterExpression,
    Lexer,
    Parser,
    Token,
    TokenType,
    Variable,
    VariableNode,
    filter_re,
    render_value_in_context,
)
from django.template.loader import render_to_string
from django.template.smartif import TokenBase
from django.utils import timezone

from campaigns import tokens
from campaigns.channels.sms import sms_with_opt_out
from campaigns.models import Campaign, MessageTemplate
from core.zones import zone_or_utc
from crm.models import Contact, Event

__all__ = [
    "PREVIEW_PREFERENCES_URL",
    "PREVIEW_UNSUBSCRIBE_URL",
    "RenderError",
    "RenderedMessage",
    "html_to_text",
    "recent_context_for",
    "render_message",
    "template_errors",
    "template_validate",
]

# --- The restricted engine -------------------------------------------------------------------

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
_INNER_TAGS = frozenset({"elif", "else", "empty"}) | {f"end{tag}" for tag in ALLOWED_TAGS}

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


# --- Limits ----------------------------------------------------------------------------------
# Marketers write the templates and customers write the data, and both can make a render
# huge: `|ljust:"500000000"` took 1.6 GB, seven nested loops 21 s, and every |addslashes
# doubles the backslashes it is given. So the engine is bounded here, in one place.

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
class _Budget:
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


def _new_budget() -> _Budget:
    return _Budget(
        max_chars=settings.RENDER_MAX_EMAIL_BYTES,
        max_iterations=settings.RENDER_MAX_LOOP_ITERATIONS,
        deadline=time.monotonic() + settings.RENDER_MAX_SECONDS,
    )


# The budget of the field being rendered. Filters are called with their value and argument
# only, so they find it here rather than in the template context.
_BUDGET: ContextVar[_Budget | None] = ContextVar("cadence_render_budget", default=None)


def _budget() -> _Budget:
    return _BUDGET.get() or _new_budget()


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
        budget = _budget()
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


class _CountedSequence:
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
        budget = _budget()
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
        budget = _budget()
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
    node.sequence = _CountedSequence(sequence)  # type: ignore[assignment]
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


# --- Errors and results ----------------------------------------------------------------------

FIELD_LABELS = {
    "subject": "subject",
    "preheader": "preheader",
    "html_body": "HTML body",
    "text_body": "text body",
    "sms_body": "SMS body",
}


class RenderError(Exception):
    """A template field that cannot be compiled or rendered; the message names the field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{FIELD_LABELS.get(field, field)}: {problem}")


@dataclass(frozen=True)
class RenderedMessage:
    subject: str
    preheader: str
    html: str
    text: str
    sms_body: str


# --- Compilation -----------------------------------------------------------------------------

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
        if name not in ALLOWED_TAGS and name not in _INNER_TAGS:
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
    seen: set[int] = set()

    def scan(value: Any, depth: int, lineno: int) -> None:
        if id(value) in seen or isinstance(value, str | int | float | bool | None):
            return
        seen.add(id(value))
        if isinstance(value, FilterExpression):
            _check_expression(value, lineno, max_width)
        elif isinstance(value, _CountedSequence):
            scan(value.inner, depth, lineno)
        elif isinstance(value, Node):
            token = getattr(value, "token", None)
            lineno = getattr(token, "lineno", None) or lineno
            if isinstance(value, defaulttags.ForNode):
                # {% empty %} runs instead of the loop, at the loop's own depth.
                scan(value.nodelist_empty, depth, lineno)
                depth += 1
                if depth > max_depth:
                    raise TemplateSyntaxError(
                        f"{{% for %}} loops can be nested at most {max_depth} deep; this one "
                        f"is {depth} deep (line {lineno})"
                    )
            for item in vars(value).values():
                scan(item, depth, lineno)
        elif isinstance(value, TokenBase):  # an {% if %} condition or one of its operands
            for item in vars(value).values():
                scan(item, depth, lineno)
        elif isinstance(value, list | tuple):  # NodeList is a list
            for item in value:
                scan(item, depth, lineno)
        elif isinstance(value, dict):
            for item in value.values():
                scan(item, depth, lineno)

    scan(template.nodelist, 0, 1)


# --- Missing values in links ------------------------------------------------------------------
# A value missing from a link makes a broken link ("https://shop.example.com/p/"), so a
# variable inside a URL (an href or src attribute, or a URL written in the text) that renders
# empty holds the message with a RenderError, unless it declares a fallback with |default.
# Outside links a missing value renders blank, as Django does.

_URL_ATTRIBUTE = re.compile(
    r"""\b(?:href|src)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""", re.IGNORECASE
)
_URL_IN_TEXT = re.compile(r"""(?:https?://|www\.)[^\s"'<>]*""", re.IGNORECASE)
_HOLD_MISSING: ContextVar[bool] = ContextVar("cadence_hold_missing", default=True)


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


class _PositionedTemplate(Template):
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


def _mark_link_variables(template: Template, source: str) -> None:
    """Swap each {{ ... }} that sits inside a URL for a _LinkVariableNode, in place."""
    spans = _link_spans(source)
    if not spans:
        return
    seen: set[int] = set()

    def in_link(node: VariableNode) -> bool:
        position = getattr(getattr(node, "token", None), "position", None)
        return position is not None and any(a <= position[0] < b for a, b in spans)

    def walk(value: Any) -> None:
        if id(value) in seen or isinstance(value, str | int | float | bool | None):
            return
        seen.add(id(value))
        if isinstance(value, list):  # NodeList is a list
            for index, item in enumerate(value):
                if type(item) is VariableNode and in_link(item):
                    link = _LinkVariableNode(item.filter_expression)
                    link.token, link.origin = item.token, item.origin
                    value[index] = link
                else:
                    walk(item)
        elif isinstance(value, tuple):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, Node | _CountedSequence):
            for item in vars(value).values():
                walk(item)

    walk(template.nodelist)


@lru_cache(maxsize=1024)
def _compile_bounded(source: str, max_depth: int, max_width: int) -> Template:
    _check_tags(source)
    try:
        template = _PositionedTemplate(source, engine=restricted_engine())
    except TemplateSyntaxError as exc:
        message = str(exc)
        match = _INVALID_FILTER.search(message)
        if match:
            raise TemplateSyntaxError(f"the filter |{match.group(1)} is not allowed") from exc
        raise
    _check_variables(source)
    _check_limits(template, max_depth=max_depth, max_width=max_width)
    _mark_link_variables(template, source)
    return template


def _compile(source: str) -> Template:
    # The limits are part of the cache key: a changed setting applies to cached templates.
    return _compile_bounded(
        source, settings.RENDER_MAX_LOOP_DEPTH, settings.RENDER_MAX_FILTER_WIDTH
    )


# A django.core.signing value: payload (".": compressed), timestamp, SHA-256 signature.
_SIGNED_TOKEN = re.compile(r"\.?[A-Za-z0-9_-]+:[A-Za-z0-9]+:[A-Za-z0-9_-]{43}")


def _redacted(message: str, context: Mapping[str, Any]) -> str:
    """An error message fit to show a marketer: no customer link, and nothing shaped like
    a signed token (a filter may have cut a link apart before failing on it)."""
    for key, label in (
        ("unsubscribe_url", "[unsubscribe link]"),
        ("preferences_url", "[preferences link]"),
    ):
        link = context.get(key)
        if isinstance(link, str) and link:
            message = message.replace(link, label)
    return _SIGNED_TOKEN.sub("[token]", message)


def _render_field(
    field: str, source: str, context: dict[str, Any], *, html: bool, hold_missing: bool = True
) -> str:
    if not source:
        return ""
    try:
        template = _compile(source)
    except TemplateSyntaxError as exc:
        raise RenderError(field, str(exc)) from exc
    budget = _new_budget()
    reset = _BUDGET.set(budget)
    reset_hold = _HOLD_MISSING.set(hold_missing)
    try:
        output = template.render(Context(context, autoescape=html))
        if len(output) > budget.max_chars:
            raise budget.too_long()
    except (RenderLimitError, MissingValueError) as exc:
        raise RenderError(field, str(exc)) from exc
    except VariableDoesNotExist as exc:
        # Django's message lists the object it looked in, up to the whole context (links
        # with signed tokens included): name the missing key alone.
        missing = exc.params[0] if exc.params else "?"
        raise RenderError(field, f"{str(missing)!r} is not defined here") from exc
    except Exception as exc:  # a filter can fail on odd data; name the field, keep the cause
        problem = _redacted(f"{type(exc).__name__}: {exc}", context)
        raise RenderError(field, problem) from exc
    finally:
        _HOLD_MISSING.reset(reset_hold)
        _BUDGET.reset(reset)
    # Template.render marks its output safe; a message is data to whoever shows it next (the
    # admin preview puts it in an attribute), so hand back a plain str that will be escaped.
    return "".join([output])


# --- Context ---------------------------------------------------------------------------------

_CHUNK = 500


def recent_context_for(contact_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per contact, the last product_viewed event's properties as ``last_viewed`` and the last
    order as ``last_order`` ({"value", "currency", "occurred_at", **properties}); contacts
    without such events get ``{}`` for them.

    Two queries per chunk of ids: one picks the latest event ids per contact and type with
    correlated subqueries (each an index seek on (contact, type, occurred_at)), one loads them.
    """
    ids = list(dict.fromkeys(contact_ids))
    result: dict[int, dict[str, Any]] = {cid: {"last_viewed": {}, "last_order": {}} for cid in ids}

    def latest(event_type: str) -> Subquery:
        return Subquery(
            Event.objects.filter(contact_id=OuterRef("pk"), type=event_type)
            .order_by("-occurred_at", "-id")
            .values("id")[:1]
        )

    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        rows = (
            Contact.objects.filter(pk__in=chunk)
            .annotate(
                viewed_id=latest(Event.PRODUCT_VIEWED), order_id=latest(Event.ORDER_COMPLETED)
            )
            .values_list("pk", "viewed_id", "order_id")
        )
        wanted: dict[int, tuple[int, str]] = {}
        for contact_id, viewed_id, order_id in rows:
            if viewed_id:
                wanted[viewed_id] = (contact_id, "last_viewed")
            if order_id:
                wanted[order_id] = (contact_id, "last_order")
        if not wanted:
            continue
        events = Event.objects.filter(pk__in=list(wanted)).only(
            "id", "properties", "value", "currency", "occurred_at"
        )
        for event in events:
            contact_id, key = wanted[event.pk]
            properties = event.properties if isinstance(event.properties, dict) else {}
            data: dict[str, Any] = {**properties, "occurred_at": event.occurred_at}
            if key == "last_order":
                data["value"] = event.value
                data["currency"] = event.currency or properties.get("currency", "")
            result[contact_id][key] = data
    return result


def _frozen(value: Any) -> Any:
    """Read-only copies of JSON data: the template language calls any attribute that takes
    no argument, so a plain dict would obey {{ attributes.clear }} and a list {{ x.pop }}."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(key): _frozen(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value


def _contact_zone(contact: Contact) -> dt.tzinfo:
    return zone_or_utc(contact.timezone)


def contact_context(contact: Contact) -> dict[str, Any]:
    """The only contact fields a template sees."""
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email or "",
        "phone": contact.phone or "",
        "locale": contact.locale,
        "timezone": contact.timezone,
        "country": contact.country,
        "attributes": _frozen(contact.attributes if isinstance(contact.attributes, dict) else {}),
    }


# What previews and template validation put where a customer's links go: a marketer must
# never be handed a working unsubscribe or preference link (with it they could act as the
# customer), and an error shown in admin then has nothing to leak.
PREVIEW_UNSUBSCRIBE_URL = "#unsubscribe-link-preview"
PREVIEW_PREFERENCES_URL = "#preferences-link-preview"


def _context(
    *,
    contact: Contact,
    campaign: Campaign,
    delivery_id: int | None,
    recent: dict[str, Any],
    preview: bool = False,
) -> dict[str, Any]:
    contact_id = contact.pk or 0
    if preview:
        links = {
            "unsubscribe_url": PREVIEW_UNSUBSCRIBE_URL,
            "preferences_url": PREVIEW_PREFERENCES_URL,
        }
    else:
        links = {
            "unsubscribe_url": tokens.unsubscribe_url(
                contact_id=contact_id,
                channel=campaign.channel,
                purpose=campaign.purpose,
                delivery_id=delivery_id,
            ),
            "preferences_url": tokens.preferences_url(contact_id=contact_id),
        }
    return {
        "contact": contact_context(contact),
        "campaign": {"name": campaign.name, "slug": campaign.slug},
        "last_viewed": _frozen(recent.get("last_viewed") or {}),
        "last_order": _frozen(recent.get("last_order") or {}),
        **links,
        "sender": settings.SENDER_POSTAL_ADDRESS,
        "now": timezone.now().astimezone(_contact_zone(contact)),
    }


# --- HTML to text ----------------------------------------------------------------------------

_BLOCKS = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "table", "tr", "ul", "ol", "blockquote"}
)
_SKIP = frozenset({"head", "style", "script", "title"})


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_tag: str | None = None  # inside <style>, <head>, a hidden preheader...
        self._skip_depth = 0
        self._links: list[tuple[str, int]] = []  # (href, index in parts where its text began)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_tag:
            if tag == self._skip_tag:
                self._skip_depth += 1
            return
        style = (dict(attrs).get("style") or "").replace(" ", "").lower()
        if tag in _SKIP or (tag in {"span", "div"} and "display:none" in style):
            self._skip_tag, self._skip_depth = tag, 1
            return
        if tag == "br":
            self.parts.append("\n")
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in {"td", "th"}:
            self.parts.append(" ")
        elif tag == "a":
            self._links.append((dict(attrs).get("href") or "", len(self.parts)))

    def handle_endtag(self, tag: str) -> None:
        if self._skip_tag:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if not self._skip_depth:
                    self._skip_tag = None
            return
        if tag in _BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self._links:
            href, begin = self._links.pop()
            text = "".join(self.parts[begin:]).strip()
            if href and not href.startswith("#") and href != text:
                self.parts.append(f" ({href})" if text else href)

    def handle_data(self, data: str) -> None:
        if not self._skip_tag:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """A readable plain-text version: links as "text (url)", paragraphs as blank lines."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    lines = [line.strip() for line in text.splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


# --- Rendering -------------------------------------------------------------------------------


def _one_line(value: str) -> str:
    # Subjects go into a header: a newline there is an error (or an injection).
    return re.sub(r"\s+", " ", value).strip()


def _with_preheader(html: str, preheader: str) -> str:
    if not preheader:
        return html
    span = (
        '<span style="display:none !important;visibility:hidden;opacity:0;color:transparent;'
        'height:0;width:0;overflow:hidden;mso-hide:all;font-size:1px;line-height:1px">'
        f"{html_escape(preheader)}</span>"
    )
    match = re.search(r"<body[^>]*>", html, re.IGNORECASE)
    if match:
        return html[: match.end()] + span + html[match.end() :]
    return span + html


def _append_html_footer(html: str, footer: str) -> str:
    match = re.search(r"</body\s*>", html, re.IGNORECASE)
    if match:
        return html[: match.start()] + footer + html[match.start() :]
    return html + footer


def render_message(
    *,
    template: MessageTemplate,
    contact: Contact,
    campaign: Campaign,
    delivery_id: int | None = None,
    recent: dict[str, Any] | None = None,
    preview: bool = False,
) -> RenderedMessage:
    """Render what the campaign's channel needs (email: subject, preheader, HTML, text; SMS:
    the SMS body). A marketing email gets the standard footer (unsubscribe and preference
    links, postal address) in each body that does not use ``{{ unsubscribe_url }}`` itself,
    and the preheader as a hidden span at the top of the HTML. `preview=True` puts inert
    placeholders where the customer's signed links go (for admin previews). Raises
    RenderError, also for a message over RENDER_MAX_EMAIL_BYTES or RENDER_MAX_SMS_CHARS."""
    if recent is None:
        recent = recent_context_for([contact.pk]).get(contact.pk, {}) if contact.pk else {}
    context = _context(
        contact=contact,
        campaign=campaign,
        delivery_id=delivery_id,
        recent=recent,
        preview=preview,
    )

    if campaign.channel == "sms":
        sms_body = _render_field("sms_body", template.sms_body, context, html=False).strip()
        _check_sms_length(sms_body, campaign)
        return RenderedMessage(subject="", preheader="", html="", text="", sms_body=sms_body)

    subject = _one_line(_render_field("subject", template.subject, context, html=False))
    preheader = _one_line(_render_field("preheader", template.preheader, context, html=False))
    html = _render_field("html_body", template.html_body, context, html=True)
    if template.text_body:
        text = _render_field("text_body", template.text_body, context, html=False).strip()
        text_has_link = "unsubscribe_url" in template.text_body
    else:
        text = html_to_text(html)
        text_has_link = "unsubscribe_url" in template.html_body

    if not campaign.is_transactional:
        footer_context = {
            "unsubscribe_url": context["unsubscribe_url"],
            "preferences_url": context["preferences_url"],
            "sender": context["sender"],
        }
        if html and "unsubscribe_url" not in template.html_body:
            html = _append_html_footer(
                html, render_to_string("campaigns/email/footer.html", footer_context)
            )
        if not text_has_link:
            footer = render_to_string("campaigns/email/footer.txt", footer_context).strip()
            text = f"{text}\n\n{footer}" if text else footer
    if html:
        html = _with_preheader(html, preheader)
    size = sum(len(part.encode()) for part in (subject, preheader, html, text))
    if size > settings.RENDER_MAX_EMAIL_BYTES:
        raise RenderError(
            "html_body" if html else "text_body",
            f"the rendered email is {size} bytes, over the limit of "
            f"{settings.RENDER_MAX_EMAIL_BYTES} bytes (RENDER_MAX_EMAIL_BYTES)",
        )
    return RenderedMessage(subject=subject, preheader=preheader, html=html, text=text, sms_body="")


def _check_sms_length(body: str, campaign: Campaign) -> None:
    """Twilio refuses a body over 1,600 characters; count what will be sent, the opt-out
    sentence campaigns.channels.sms.build_sms appends to a marketing SMS included."""
    sent = sms_with_opt_out(body, transactional=campaign.is_transactional)
    length = len(sent)
    with_opt_out = sent != body.strip()
    if length > settings.RENDER_MAX_SMS_CHARS:
        extra = " with the opt-out text" if with_opt_out else ""
        raise RenderError(
            "sms_body",
            f"the SMS would be {length} characters{extra}, over the limit of "
            f"{settings.RENDER_MAX_SMS_CHARS} (RENDER_MAX_SMS_CHARS)",
        )


# --- Validation ------------------------------------------------------------------------------

SAMPLE_CONTACTS = 3


def _sample_contacts() -> list[Contact]:
    real = list(Contact.objects.filter(is_erased=False).order_by("-id")[:SAMPLE_CONTACTS])
    if real:
        return real
    return [
        Contact(
            id=0,
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.com",
            phone="+14155550123",
            locale="en-GB",
            timezone="Europe/London",
            country="GB",
            attributes={"plan": "pro", "loyalty_points": 120},
        )
    ]


def _sample_recent() -> dict[str, Any]:
    return {
        "last_viewed": {"product_id": "SKU-1", "product_name": "Blue mug"},
        "last_order": {"value": "42.50", "currency": "EUR", "order_id": "A-1"},
    }


def _fields_for(template: MessageTemplate) -> Iterable[tuple[str, bool]]:
    if template.channel == "sms":
        yield "sms_body", False
    else:
        yield from (
            ("subject", False),
            ("preheader", False),
            ("html_body", True),
            ("text_body", False),
        )


def template_errors(
    template: MessageTemplate, *, contacts: Sequence[Contact] | None = None
) -> dict[str, list[str]]:
    """Errors by model field name. Each field is compiled and rendered for a few sample
    contacts (the newest real ones, else a built-in sample), so that one bad field does not
    hide another."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        if message not in errors.setdefault(field, []):
            errors[field].append(message)

    if template.channel == "sms":
        if not template.sms_body.strip():
            add("sms_body", "an SMS template needs an SMS body")
    else:
        if not template.subject.strip():
            add("subject", "an email template needs a subject")
        if not (template.html_body.strip() or template.text_body.strip()):
            add("html_body", "an email template needs an HTML body or a text body")

    samples = list(contacts) if contacts is not None else _sample_contacts()
    recent_by_id = recent_context_for([c.pk for c in samples if c.pk])
    campaign = Campaign(name="Sample campaign", slug="sample", channel=template.channel)
    for field, html in _fields_for(template):
        source = getattr(template, field)
        for contact in samples:
            recent = recent_by_id.get(contact.pk) or _sample_recent()
            context = _context(
                contact=contact, campaign=campaign, delivery_id=None, recent=recent, preview=True
            )
            try:
                # A sample contact may lack a value a link needs: at send that holds the
                # message for that contact, it does not make the template wrong.
                _render_field(field, source, context, html=html, hold_missing=False)
            except RenderError as exc:
                add(field, exc.problem)
                break
    return errors


def template_validate(template: MessageTemplate) -> list[str]:
    """Every problem as "<field label>: <problem>"; empty when the template is fine."""
    return [
        f"{FIELD_LABELS.get(field, field)}: {message}"
        for field, messages in template_errors(template).items()
        for message in messages
    ]
