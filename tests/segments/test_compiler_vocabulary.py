"""Segment definitions on the shared vocabulary: property filter errors and NULL semantics."""

from __future__ import annotations

import pytest

from segments.compiler import DefinitionError, definition_parse
from segments.compiler.tree import definition_dump


def _behaviour(where: object) -> dict[str, object]:
    return {
        "type": "behaviour",
        "event": "product_viewed",
        "operator": "at_least",
        "count": 1,
        "days": 7,
        "where": where,
    }


def test_a_where_that_is_not_a_list_is_named_in_the_error() -> None:
    with pytest.raises(DefinitionError) as caught:
        definition_parse({"op": "and", "conditions": [_behaviour({"property": "category"})]})
    assert caught.value.errors == [
        (
            "conditions[0].where",
            'must be a list of property filters, e.g. [{"property": "category", '
            '"operator": "equals", "value": "kitchen"}]',
        )
    ]


def test_a_filter_operator_outside_the_segment_vocabulary_is_refused() -> None:
    where = [{"property": "price", "operator": "gte", "value": 10}]
    with pytest.raises(DefinitionError) as caught:
        definition_parse(_behaviour(where))
    [(path, message)] = caught.value.errors
    assert path == "where[0].operator"
    assert message.startswith("'gte' is not one of: equals, not_equals, in, contains")


def test_the_exists_spelling_reads_as_is_set_in_attributes_and_filters() -> None:
    tree = definition_parse(
        {
            "op": "and",
            "conditions": [
                {"type": "attribute", "field": "attributes.vip", "operator": "exists"},
                _behaviour([{"property": "coupon", "operator": "not_exists"}]),
            ],
        }
    )
    assert definition_dump(tree)["conditions"] == [
        {"type": "attribute", "field": "attributes.vip", "operator": "is_set"},
        {
            "type": "behaviour",
            "event": "product_viewed",
            "operator": "at_least",
            "count": 1,
            "days": 7,
            "where": [{"property": "coupon", "operator": "is_not_set"}],
        },
    ]
