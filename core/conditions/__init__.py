"""The condition vocabulary segments, triggers and journeys share: value tests with their
operators and NULL semantics (values.py), event and attribute property filters, compiled to
a Q on a JSON column and cleaned from a marketer's `where` list (properties.py), and time
windows in days or hours (windows.py).

Each app keeps its own condition types and stored shapes; what they say about a value, a
property or a window is said here once."""

from core.conditions.fields import OperatorField
from core.conditions.properties import (
    PropertyFilter,
    PropertyFilterData,
    WhereDialect,
    column_test,
    json_test,
    property_filters_q,
    where_clean,
    where_load,
)
from core.conditions.values import (
    OPERATOR_ALIASES,
    OPERATOR_LABELS,
    JsonScalar,
    ValueOperator,
    ValueTest,
    operator_choices,
    operator_normalise,
    value_test_check,
    value_test_describe,
)
from core.conditions.windows import Window, elapsed

__all__ = [
    "OPERATOR_ALIASES",
    "OPERATOR_LABELS",
    "JsonScalar",
    "OperatorField",
    "PropertyFilter",
    "PropertyFilterData",
    "ValueOperator",
    "ValueTest",
    "WhereDialect",
    "Window",
    "column_test",
    "elapsed",
    "json_test",
    "operator_choices",
    "operator_normalise",
    "property_filters_q",
    "value_test_check",
    "value_test_describe",
    "where_clean",
    "where_load",
]
