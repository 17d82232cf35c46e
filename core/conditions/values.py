"""Value tests: one operator vocabulary for contact fields, custom attributes and event
properties.

Operators have one name each. Trigger rules stored before the names were shared spell the
presence tests `exists` / `not_exists`; `operator_normalise` reads both spellings, so stored
JSON keeps loading without a migration."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

ValueOperator = Literal[
    "equals",
    "not_equals",
    "in",
    "contains",
    "gt",
    "gte",
    "lt",
    "lte",
    "is_set",
    "is_not_set",
]
JsonScalar = str | int | float | bool

OPERATOR_LABELS: dict[str, str] = {
    "equals": "equals",
    "not_equals": "does not equal",
    "in": "is one of",
    "contains": "contains",
    "gt": "is greater than",
    "gte": "is at least",
    "lt": "is less than",
    "lte": "is at most",
    "is_set": "is set",
    "is_not_set": "is not set",
}
OPERATOR_ALIASES: dict[str, str] = {"exists": "is_set", "not_exists": "is_not_set"}
PRESENCE = ("is_set", "is_not_set")
NUMERIC = ("gt", "gte", "lt", "lte")


def operator_normalise(name: str) -> str:
    """The shared name of an operator, whichever spelling was stored."""
    return OPERATOR_ALIASES.get(name, name)


def operator_choices(
    *names: str, labels: Mapping[str, str] | None = None
) -> tuple[tuple[str, str], ...]:
    """Form choices for the operators a condition type accepts. `labels` overrides a label
    where the caller's matching differs (whether contains ignores case, say)."""
    overrides = labels or {}
    return tuple((name, overrides.get(name, OPERATOR_LABELS[name])) for name in names)


@dataclass(frozen=True)
class ValueTest:
    """A comparison of one value (a contact field, a custom attribute, an event property)."""

    operator: ValueOperator
    value: JsonScalar | tuple[JsonScalar, ...] | None = None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def value_test_check(operator: str, value: Any) -> tuple[ValueTest | None, str | None]:
    """The ValueTest for an operator and its value, or the message for what is wrong with
    the value (the operator itself is checked by its choice field)."""
    op = cast(ValueOperator, operator_normalise(operator))
    if op in PRESENCE:
        if value not in (None, ""):
            return None, f"must be left out for {operator}"
        return ValueTest(op), None
    if value is None or value == "":
        return None, f"is required for {operator}"
    if op == "in":
        if not isinstance(value, list) or not value:
            return None, 'must be a non-empty list for "in", e.g. ["pro", "team"]'
        return ValueTest("in", tuple(value)), None
    if isinstance(value, list):
        return None, f'a list is only allowed with "in", not with {operator}'
    if op in NUMERIC:
        if not _is_number(value):
            return None, f"must be a number for {operator}, got {value!r}"
        return ValueTest(op, value), None
    if op == "contains" and not isinstance(value, str):
        return None, f"must be a text for contains, got {value!r}"
    return ValueTest(op, value), None


def value_test_describe(test: ValueTest, *, labels: Mapping[str, str] | None = None) -> str:
    """The test in words: "is set", "equals 'pro'", "is one of ['pro', 'team']"."""
    if test.operator in PRESENCE:
        return test.operator.replace("_", " ")
    label = (labels or {}).get(test.operator, OPERATOR_LABELS[test.operator])
    value = list(test.value) if isinstance(test.value, tuple) else test.value
    return f"{label} {value!r}"
