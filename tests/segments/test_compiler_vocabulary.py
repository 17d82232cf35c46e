"""Segment definitions on the shared vocabulary: property filter errors and NULL semantics."""

from __future__ import annotations

import pytest

from segments.compiler import DefinitionError, definition_parse


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
