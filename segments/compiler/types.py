"""The shapes of a segment definition: TypedDicts for the stored JSON, frozen dataclasses for
the parsed tree that the compiler reads.

A definition is a tree of groups and conditions:

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
from typing import Any, ClassVar, Literal, NotRequired, TypedDict

from core.conditions import JsonScalar, PropertyFilter, PropertyFilterData, ValueTest

# The operators a segment accepts on a value: the shared vocabulary less gte and lte.
SegmentValueOperator = Literal[
    "equals", "not_equals", "in", "contains", "gt", "lt", "is_set", "is_not_set"
]
GroupOp = Literal["and", "or", "not"]


# --- The stored JSON ---------------------------------------------------------------------


class GroupData(TypedDict):
    op: GroupOp
    conditions: list[Any]  # GroupData | any ...ConditionData below


class AttributeConditionData(TypedDict):
    type: Literal["attribute"]
    field: str  # a contact field such as "country", or "attributes.<key>" for custom ones
    operator: SegmentValueOperator
    value: NotRequired[JsonScalar | list[JsonScalar]]


class ConsentConditionData(TypedDict):
    type: Literal["consent"]
    channel: Literal["email", "sms"]
    purpose: str  # "marketing" or a topic such as "newsletter"
    state: Literal["has", "lacks"]


class BehaviourConditionData(TypedDict):
    type: Literal["behaviour"]
    event: str  # an event type such as "product_viewed"
    operator: Literal["at_least", "at_most", "exactly", "none"]
    count: NotRequired[int]  # not used by "none"
    days: int
    where: NotRequired[list[PropertyFilterData]]


class RecencyConditionData(TypedDict):
    type: Literal["recency"]
    of: Literal["activity", "purchase"]
    operator: Literal["more_than", "at_least", "less_than", "at_most"]
    days: int
    include_never: NotRequired[bool]


class RfmConditionData(TypedDict):
    type: Literal["rfm"]
    group: NotRequired[str]  # a named group such as "champions"
    score: NotRequired[Literal["recency", "frequency", "monetary"]]
    operator: NotRequired[Literal["equals", "gte", "lte"]]
    value: NotRequired[int]  # 1 to 5


class LifecycleConditionData(TypedDict):
    type: Literal["lifecycle"]
    stages: list[str]  # new, active, dormant, churned, reactivated


class ClusterConditionData(TypedDict):
    type: Literal["cluster"]
    cluster: int  # the cluster number in the latest clustering run
    run: NotRequired[int]  # a given run's id instead of the latest


class PredictionConditionData(TypedDict):
    type: Literal["prediction"]
    metric: Literal["p_alive", "expected_purchases"]
    operator: Literal["gt", "lt"]
    value: float


class SegmentConditionData(TypedDict):
    type: Literal["segment"]
    segment: str  # the other segment's slug
    member: bool  # true: is a current member; false: is not


class TimezoneConditionData(TypedDict):
    type: Literal["timezone"]
    operator: Literal["in", "not_in"]
    zones: list[str]  # IANA names such as "Europe/Paris"


class CountryConditionData(TypedDict):
    type: Literal["country"]
    operator: Literal["in", "not_in"]
    countries: list[str]  # ISO 3166 codes such as "FR"


# --- The parsed tree ---------------------------------------------------------------------


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
