"""Property filters: a test on one key of a JSON column (event properties, custom contact
attributes), compiled to a Q, and the cleaning of a marketer's `where` list.

NULL semantics are decided here and nowhere else. A row without the key is "not set"; for
every other operator it fails the test, except that a segment asks "does not equal x" of
contacts and counts one without the value as not equal to x (`absent_not_equal=True`), while
a trigger's event filter keeps SQL's reading (an absent key equals nothing and differs from
nothing), as the rules engine does for attributes."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict, cast

from django.db.models import Q

from core.conditions.values import (
    JsonScalar,
    ValueOperator,
    ValueTest,
    operator_normalise,
    value_test_check,
)

FILTER_KEYS = ("property", "operator", "value")
MAX_KEY_LENGTH = 64


class PropertyFilterData(TypedDict):
    """One entry of a stored `where` list, e.g.
    {"property": "category", "operator": "equals", "value": "kitchen"}."""

    property: str
    operator: NotRequired[str]  # may be left out where the dialect has a default (triggers)
    value: NotRequired[JsonScalar | list[JsonScalar]]


@dataclass(frozen=True)
class PropertyFilter:
    property: str
    test: ValueTest

    def as_data(self) -> PropertyFilterData:
        data: PropertyFilterData = {"property": self.property, "operator": self.test.operator}
        value = self.test.value
        if value is not None:
            data["value"] = list(value) if isinstance(value, tuple) else value
        return data


def column_test(column: str, test: ValueTest) -> Q:
    """A test on a text column of the model (contact fields). Blank text counts as unset."""
    op, value = test.operator, test.value
    if op == "equals":
        return Q(**{column: value})
    if op == "not_equals":
        # Django's negation keeps NULLs, so "not equals" includes rows without a value.
        return ~Q(**{column: value})
    if op == "in":
        return Q(**{f"{column}__in": list(value)})  # type: ignore[arg-type]
    if op == "contains":
        return Q(**{f"{column}__icontains": value})
    unset = Q(**{f"{column}__isnull": True}) | Q(**{column: ""})
    if op == "is_set":
        return ~unset
    if op == "is_not_set":
        return unset
    raise ValueError(f"{op} does not apply to a text column")


_LOOKUPS = {
    "equals": "exact",
    "not_equals": "exact",
    "in": "in",
    "contains": "icontains",
    "gt": "gt",
    "gte": "gte",
    "lt": "lt",
    "lte": "lte",
}


def json_test(json_column: str, key: str, test: ValueTest, *, absent_not_equal: bool) -> Q:
    """A test on one key of a JSON column. Every path ends in an explicit lookup
    ("attributes__in__exact"), so a key named like a lookup is still read as a key."""
    op, value = test.operator, test.value
    missing = ~Q(**{f"{json_column}__has_key": key})
    if op == "is_set":
        return Q(**{f"{json_column}__has_key": key})
    if op == "is_not_set":
        return missing
    rhs: Any = list(value) if isinstance(value, tuple) else value
    match = Q(**{f"{json_column}__{key}__{_LOOKUPS[op]}": rhs})
    if op != "not_equals":
        return match
    # NOT (NULL = x) is NULL, not true: only an explicit OR lets an absent key through.
    return (~match | missing) if absent_not_equal else ~match


def property_filters_q(
    json_column: str, filters: Iterable[PropertyFilter], *, absent_not_equal: bool
) -> Q:
    """Every filter holds (an empty list holds for every row)."""
    combined = Q()
    for item in filters:
        combined &= json_test(
            json_column, item.property, item.test, absent_not_equal=absent_not_equal
        )
    return combined


@dataclass(frozen=True)
class WhereDialect:
    """What one kind of condition accepts in its `where` list. `text_values`: values are
    stored as text (trigger rules compare the text "3", not the number 3)."""

    operators: tuple[str, ...]
    key_re: re.Pattern[str]
    key_hint: str  # what a key may be, shown when one is not
    default_operator: str | None = None
    text_values: bool = False


_EXAMPLE = '[{"property": "category", "operator": "equals", "value": "kitchen"}]'


def _clean_key(raw: Any, dialect: WhereDialect) -> tuple[str | None, str | None]:
    if raw in (None, ""):
        return None, "is required"
    if not isinstance(raw, str):
        return None, f"must be a text, got {raw!r}"
    key = raw.strip()
    if len(key) > MAX_KEY_LENGTH:
        return None, f"must be at most {MAX_KEY_LENGTH} characters"
    if not dialect.key_re.fullmatch(key):
        return None, f"{key!r} is not a property name ({dialect.key_hint})"
    return key, None


def _clean_operator(raw: Any, dialect: WhereDialect) -> tuple[str | None, str | None]:
    if raw in (None, "") and dialect.default_operator is not None:
        raw = dialect.default_operator
    if raw in (None, ""):
        return None, "is required"
    operator = operator_normalise(str(raw))
    if operator not in dialect.operators:
        return None, f"{str(raw)!r} is not one of: {', '.join(dialect.operators)}"
    return operator, None


def _clean_value(
    operator: str, raw: Any, dialect: WhereDialect
) -> tuple[ValueTest | None, str | None]:
    if isinstance(raw, list):
        for index, item in enumerate(raw):
            if not isinstance(item, str | int | float | bool):
                return None, f"item {index} must be a text or a number, got {item!r}"
    elif raw is not None and not isinstance(raw, str | int | float | bool):
        return None, f"must be a text, a number or a list, got {raw!r}"
    if dialect.text_values and raw is not None:
        if isinstance(raw, bool | list):
            return None, f"must be a text or a number for {operator}, got {raw!r}"
        raw = str(raw) if raw != "" else raw
    return value_test_check(operator, raw)


def _clean_entry(
    item: Any, path: str, dialect: WhereDialect
) -> tuple[PropertyFilter | None, list[tuple[str, str]]]:
    if not isinstance(item, dict):
        return None, [(path, f"must be an object, e.g. {_EXAMPLE[1:-1]}")]
    errors = [
        (f"{path}.{key}", f"is not an option ({', '.join(FILTER_KEYS)})")
        for key in sorted(set(item) - set(FILTER_KEYS))
    ]
    key, problem = _clean_key(item.get("property"), dialect)
    if problem:
        errors.append((f"{path}.property", problem))
    operator, problem = _clean_operator(item.get("operator"), dialect)
    if problem:
        errors.append((f"{path}.operator", problem))
    test = None
    if operator is not None:
        test, problem = _clean_value(operator, item.get("value"), dialect)
        if problem:
            errors.append((f"{path}.value", problem))
    if errors or key is None or test is None:
        return None, errors
    return PropertyFilter(key, test), []


def where_clean(
    raw: Any, *, dialect: WhereDialect, path: str = "where"
) -> tuple[tuple[PropertyFilter, ...], list[tuple[str, str]]]:
    """The filters of a marketer's `where` list, and (path, message) for every problem, e.g.
    ("where[1].operator", "'like' is not one of: equals, not_equals, contains"). Nothing
    (None, "" or []) is no filter."""
    if raw in (None, "", []):
        return (), []
    if not isinstance(raw, list):
        return (), [(path, f"must be a list of property filters, e.g. {_EXAMPLE}")]
    filters: list[PropertyFilter] = []
    errors: list[tuple[str, str]] = []
    for index, item in enumerate(raw):
        cleaned, problems = _clean_entry(item, f"{path}[{index}]", dialect)
        errors.extend(problems)
        if cleaned is not None:
            filters.append(cleaned)
    return tuple(filters), errors


def where_load(
    raw: Iterable[Mapping[str, Any]], *, default_operator: str = "equals"
) -> tuple[PropertyFilter, ...]:
    """The filters of a `where` list that was cleaned when it was stored, whichever operator
    spelling it used."""
    filters = []
    for item in raw:
        value = item.get("value")
        operator = cast(
            ValueOperator, operator_normalise(str(item.get("operator") or default_operator))
        )
        filters.append(
            PropertyFilter(
                property=str(item["property"]),
                test=ValueTest(operator, tuple(value) if isinstance(value, list) else value),
            )
        )
    return tuple(filters)
