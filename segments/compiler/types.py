"""The typed shape of a segment definition: frozen dataclasses, one per condition type, that
the per-type forms return (forms/, `to_condition`) and the compile functions take
(conditions.py). The stored JSON is the same tree as plain data, keyed by the field names (a
ValueTest written as operator and value); tree.definition_dump writes it back and
docs/segments.md lists every option:

    {"op": "and", "conditions": [
        {"type": "behaviour", "event": "product_viewed", "operator": "at_least", "count": 3,
         "days": 7, "where": [{"property": "category", "operator": "equals",
                               "value": "kitchen"}]},
        {"op": "not", "conditions": [
            {"type": "behaviour", "event": "order_completed", "operator": "none", "days": 7}]},
        {"type": "consent", "channel": "email", "purpose": "marketing", "state": "has"}]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

from core.conditions import PropertyFilter, ValueTest

GroupOp = Literal["and", "or", "not"]


@dataclass(frozen=True)
class Condition:
    """A leaf of the tree. Subclasses carry the options of one condition type; their field
    names are the JSON keys."""

    type: ClassVar[str]


@dataclass(frozen=True)
class Group:
    op: GroupOp
    children: tuple[Node, ...]


Node = Group | Condition


@dataclass(frozen=True)
class AttributeCondition(Condition):
    type: ClassVar[str] = "attribute"
    field: str
    test: ValueTest


@dataclass(frozen=True)
class ConsentCondition(Condition):
    type: ClassVar[str] = "consent"
    channel: str
    purpose: str
    state: Literal["has", "lacks"]


@dataclass(frozen=True)
class BehaviourCondition(Condition):
    type: ClassVar[str] = "behaviour"
    event: str
    operator: Literal["at_least", "at_most", "exactly", "none"]
    count: int
    days: int
    where: tuple[PropertyFilter, ...] = ()


@dataclass(frozen=True)
class RecencyCondition(Condition):
    type: ClassVar[str] = "recency"
    of: Literal["activity", "purchase"]
    operator: Literal["more_than", "at_least", "less_than", "at_most"]
    days: int
    include_never: bool = False


@dataclass(frozen=True)
class RfmCondition(Condition):
    type: ClassVar[str] = "rfm"
    group: str | None = None
    score: Literal["recency", "frequency", "monetary"] | None = None
    operator: Literal["equals", "gte", "lte"] | None = None
    value: int | None = None


@dataclass(frozen=True)
class LifecycleCondition(Condition):
    type: ClassVar[str] = "lifecycle"
    stages: tuple[str, ...]


@dataclass(frozen=True)
class ClusterCondition(Condition):
    type: ClassVar[str] = "cluster"
    cluster: int
    run: int | None = None


@dataclass(frozen=True)
class PredictionCondition(Condition):
    type: ClassVar[str] = "prediction"
    metric: Literal["p_alive", "expected_purchases"]
    operator: Literal["gt", "lt"]
    value: float


@dataclass(frozen=True)
class SegmentCondition(Condition):
    type: ClassVar[str] = "segment"
    segment: str
    member: bool


@dataclass(frozen=True)
class TimezoneCondition(Condition):
    type: ClassVar[str] = "timezone"
    operator: Literal["in", "not_in"]
    zones: tuple[str, ...]


@dataclass(frozen=True)
class CountryCondition(Condition):
    type: ClassVar[str] = "country"
    operator: Literal["in", "not_in"]
    countries: tuple[str, ...]
