"""Reading JSON that strangers send: bounded in size and depth, and with every value one that
both databases can store.

Python's `json` accepts things that later fail far from the request, with a 500 instead of a
400 naming the field: nesting thousands deep (the C scanner recurses), integers of thousands
of digits (refused by `int()`'s own digit limit as a bare ValueError), `NaN` and `Infinity`
(not JSON at all, and not storable in a JSON column), numbers such as `1e999` (parsed to an
infinite float), and strings or keys holding `\\u0000` (PostgreSQL refuses it in text and
jsonb, failing the whole transaction) or a lone surrogate such as `\\ud800` (cannot be encoded
as UTF-8, so the database driver raises).

Two ways to use it:

- `json_body_read(request, max_bytes=...)` for a body that is one thing (a form, one contact):
  any such value makes it raise `JsonBodyError` (400) naming the field, e.g. `email` or
  `attributes.note`.
- `json_body_read(request, max_bytes=..., strict=False)` for a batch: numbers that cannot be
  represented come back as `Unrepresentable` markers and strings are left as sent, so that
  the validation of each item can call `json_value_problems(item)` and reject only that item,
  naming the field, while the good items of the same batch are accepted.

Size and depth are always checked for the whole body (a 413 or a 400), and the depth is
measured without recursion before anything is parsed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest

from crm.services.errors import FieldError

# Arrays and objects inside one another; a batch of events with nested properties needs
# well under ten, so 32 leaves room and bounds every recursive walk done afterwards.
MAX_DEPTH = 32
# Digits of an integer, sign excluded: 64-bit integers have at most 19, and an order number
# longer than that is a string, not a number.
MAX_INT_DIGITS = 20

# A JSON string (escapes included), to be blanked out before the brackets are counted.
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_INNERMOST = re.compile(r"[\[{][\]}]")
# NUL: refused by PostgreSQL in text and jsonb. Surrogates: not encodable as UTF-8.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# The same in json.dumps(..., ensure_ascii=False) output, which writes NUL as \\u0000.
_SERIALISED_UNSTORABLE = re.compile(r"\\u0000|[\ud800-\udfff]")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True, repr=False)
class Unrepresentable:
    """A number in the body that no column can hold (only from `strict=False` parsing)."""

    text: str  # what was sent, shortened
    reason: str

    def __repr__(self) -> str:
        # Error messages that echo a value ("got {value!r}") show what was sent.
        return self.text


@dataclass
class JsonBodyError(Exception):
    """The body cannot be used. `status` is 400 or 413; `errors` name the fields, if any."""

    status: int
    message: str
    errors: list[FieldError] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def as_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"error": self.message}
        if self.errors:
            answer["errors"] = [{"field": e.field, "message": e.message} for e in self.errors]
        return answer


def _shortened(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}…{text[-4:]} ({len(text)} characters)"


def _parse_int(text: str) -> int | Unrepresentable:
    digits = len(text.lstrip("-"))
    if digits > MAX_INT_DIGITS:
        return Unrepresentable(
            _shortened(text),
            f"an integer of {digits} digits; at most {MAX_INT_DIGITS} are accepted, "
            f"send longer numbers as strings",
        )
    return int(text)


def _parse_float(text: str) -> float | Unrepresentable:
    value = float(text)
    if not math.isfinite(value):
        return Unrepresentable(_shortened(text), "too large to be a number")
    return value


def _parse_constant(text: str) -> Unrepresentable:
    # NaN, Infinity and -Infinity: JavaScript, not JSON.
    return Unrepresentable(text, "not a number JSON allows")


def json_depth_exceeds(text: str, max_depth: int) -> bool:
    """Whether arrays and objects nest deeper than `max_depth` in `text` (JSON), found
    without recursion: strings blanked, brackets kept, innermost pairs peeled off level by
    level. What is left after `max_depth` rounds nests deeper (or does not balance, which
    json.loads refuses anyway)."""
    if text.count("[") + text.count("{") <= max_depth:
        return False  # too few brackets to nest that deep, strings included
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets = _INNERMOST.sub("", brackets)
    return bool(brackets)


def json_parse(raw: bytes | str, *, max_depth: int = MAX_DEPTH, strict: bool = True) -> Any:
    """The JSON value of `raw`, or JsonBodyError(400). See the module's docstring."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            message = f"the body is not UTF-8: {exc.reason} at byte {exc.start}"
            raise JsonBodyError(400, message) from exc
    else:
        text = raw
    if json_depth_exceeds(text, max_depth):
        raise JsonBodyError(
            400, f"the body nests arrays and objects more than {max_depth} levels deep"
        )
    try:
        value = json.loads(
            text,
            parse_int=_parse_int,
            parse_float=_parse_float,
            parse_constant=_parse_constant,
        )
    except json.JSONDecodeError as exc:
        raise JsonBodyError(400, f"the body is not valid JSON: {exc}") from exc
    except (ValueError, RecursionError) as exc:  # a number Python itself refuses
        raise JsonBodyError(400, f"the body is not usable JSON: {exc}") from exc
    if strict:
        problems = json_value_problems(value)
        if problems:
            raise JsonBodyError(400, "the input is not valid", problems)
    return value


def json_body_read(
    request: HttpRequest, *, max_bytes: int, max_depth: int = MAX_DEPTH, strict: bool = True
) -> Any:
    """The parsed JSON body of `request`, at most `max_bytes` long (413 beyond), checked as
    `json_parse` does. The size limit is ours, not DATA_UPLOAD_MAX_MEMORY_SIZE's."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > max_bytes:
        raise JsonBodyError(413, f"the body is larger than {max_bytes} bytes")
    raw = request.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise JsonBodyError(413, f"the body is larger than {max_bytes} bytes")
    return json_parse(raw, max_depth=max_depth, strict=strict)


def _path(parent: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{parent}[{key}]"
    if _NAME.fullmatch(key):
        return f"{parent}.{key}" if parent else key
    # Anything else is quoted the way JSON would escape it, NUL and surrogates included.
    return f"{parent}[{json.dumps(key)}]"


def unstorable_reason(text: str) -> str | None:
    """Why `text` cannot be stored (NUL, a lone surrogate), or None when it can."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    char = found.group()
    if char == "\x00":
        return "contains the NUL character \\u0000, which cannot be stored"
    return f"contains a lone surrogate \\u{ord(char):04x}, which is not a character"


def _clean(value: Any) -> bool:
    """Whether `value` certainly holds nothing unstorable, found at C speed: serialised with
    the characters as they are (NUL comes out escaped), markers reported by `default`."""
    markers: list[object] = []

    def default(item: object) -> None:
        markers.append(item)

    try:
        text = json.dumps(value, ensure_ascii=False, default=default)
    except (ValueError, RecursionError):
        return False
    return not markers and _SERIALISED_UNSTORABLE.search(text) is None


def json_value_problems(value: Any, *, path: str = "") -> list[FieldError]:
    """Every value in `value` (parsed JSON) that cannot be stored, one FieldError each, named
    by its path from `path`: e.g. `properties.note`, `attributes.tags[2]`, `properties["\\u0000"]`.
    Walks with a stack, so any depth is safe."""
    if _clean(value):
        return []
    problems: list[FieldError] = []
    stack: list[tuple[str, Any]] = [(path, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, Unrepresentable):
            problems.append(FieldError(where, f"{item.text} is {item.reason}"))
        elif isinstance(item, str):
            if (reason := unstorable_reason(item)) is not None:
                problems.append(FieldError(where, f"the text {reason}"))
        elif isinstance(item, Mapping):
            children = []
            for key, child in item.items():
                child_path = _path(where, key)
                if isinstance(key, str) and (reason := unstorable_reason(key)) is not None:
                    problems.append(FieldError(child_path, f"the name {reason}"))
                    continue
                children.append((child_path, child))
            stack.extend(reversed(children))
        elif isinstance(item, list):
            stack.extend(reversed([(_path(where, i), child) for i, child in enumerate(item)]))
    return problems
