"""The shared condition vocabulary: operators, value tests, property filters, windows."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from core.conditions import (
    OperatorField,
    PropertyFilter,
    ValueTest,
    WhereDialect,
    Window,
    elapsed,
    operator_choices,
    operator_normalise,
    value_test_check,
    where_clean,
    where_load,
)

DIALECT = WhereDialect(
    operators=("equals", "not_equals", "contains"),
    key_re=re.compile(r"[A-Za-z0-9_]{1,64}"),
    key_hint="letters, digits and _",
    default_operator="equals",
    text_values=True,
)
NOW = dt.datetime(2026, 3, 10, 12, 0, tzinfo=dt.UTC)


def test_both_spellings_of_the_presence_tests_name_one_operator() -> None:
    assert operator_normalise("exists") == operator_normalise("is_set") == "is_set"
    assert operator_normalise("not_exists") == "is_not_set"
    assert operator_normalise("equals") == "equals"


def test_operator_choices_take_their_labels_from_one_table_with_overrides() -> None:
    assert operator_choices("gte", "contains", labels={"contains": "contains (ignoring case)"}) == (
        ("gte", "is at least"),
        ("contains", "contains (ignoring case)"),
    )


def test_an_old_presence_spelling_is_accepted_and_shown_as_the_shared_name() -> None:
    field = OperatorField(choices=operator_choices("equals", "is_set"))
    assert field.clean("exists") == "is_set"
    assert field.prepare_value("exists") == "is_set"


def test_value_checks_apply_to_every_numeric_operator() -> None:
    assert value_test_check("gte", 3) == (ValueTest("gte", 3), None)
    assert value_test_check("lte", "x") == (None, "must be a number for lte, got 'x'")
    assert value_test_check("exists", None) == (ValueTest("is_set"), None)


def test_where_errors_name_the_filter_and_option_at_fault() -> None:
    raw = [
        {"property": "x y", "value": "a"},
        {"property": "category", "operator": "like", "value": "a"},
        {"property": "size", "operator": "equals", "value": True},
        {"property": "size", "colour": "red", "value": "a"},
        "kitchen",
    ]
    filters, errors = where_clean(raw, dialect=DIALECT)
    assert filters == ()
    assert errors == [
        ("where[0].property", "'x y' is not a property name (letters, digits and _)"),
        ("where[1].operator", "'like' is not one of: equals, not_equals, contains"),
        ("where[2].value", "must be a text or a number for equals, got True"),
        ("where[3].colour", "is not an option (property, operator, value)"),
        (
            "where[4]",
            'must be an object, e.g. {"property": "category", "operator": "equals", '
            '"value": "kitchen"}',
        ),
    ]


def test_where_keeps_text_values_as_text_and_fills_the_default_operator() -> None:
    filters, errors = where_clean([{"property": "size", "value": 3}], dialect=DIALECT)
    assert errors == []
    assert filters == (PropertyFilter("size", ValueTest("equals", "3")),)
    assert filters[0].as_data() == {"property": "size", "operator": "equals", "value": "3"}


def test_a_where_that_is_not_a_list_is_reported_on_where() -> None:
    assert where_clean({"property": "x"}, dialect=DIALECT)[1][0][0] == "where"


def test_stored_filters_load_with_either_spelling_and_lists_as_tuples() -> None:
    assert where_load(
        [{"property": "vip", "operator": "exists"}, {"property": "plan", "value": ["a", "b"]}]
    ) == (
        PropertyFilter("vip", ValueTest("is_set")),
        PropertyFilter("plan", ValueTest("equals", ("a", "b"))),
    )


def test_a_window_reads_days_or_hours_and_converts_between_them() -> None:
    week = Window.from_options({"days": 7})
    assert week == Window(7, "day")
    assert week.hours == 168
    assert week.start(NOW) == NOW - dt.timedelta(days=7)
    assert Window.from_options({"hours": 24, "days": None}) == Window(24, "hour")
    with pytest.raises(KeyError):
        Window.from_options({})


def test_elapsed_time_is_counted_in_the_unit_asked_for() -> None:
    then = NOW - dt.timedelta(hours=36)
    assert elapsed(NOW, then, "day") == 1.5
    assert elapsed(NOW, then, "hour") == 36
    assert elapsed(NOW, None, "hour") is None
