"""The shapes of the JSON that trigger rules store, and of the facts the engine matches."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NotRequired, TypedDict

from core.conditions import PropertyFilterData

# --- Condition options: one entry of TriggerRule.conditions less its "id", as its type's
# form cleans it (empty options left out). ConditionType.options_of() gives them their type.


class EventCountOptions(TypedDict):
    """e.g. {"event": "product_viewed", "count": 3, "hours": 24}"""

    event: str
    count: int
    hours: int
    where: NotRequired[list[PropertyFilterData]]


class EventAbsentOptions(TypedDict):
    """e.g. {"event": "order_completed", "hours": 24}"""

    event: str
    hours: int
    where: NotRequired[list[PropertyFilterData]]


class DormancyOptions(TypedDict):
    days: int


class PurchaseDaysOptions(TypedDict):
    operator: Literal["more_than", "less_than"]
    days: int


class TimeWindowOptions(TypedDict):
    start: str  # local "HH:MM"
    end: str  # exclusive; before start when the window wraps past midnight


class WeekdayOptions(TypedDict):
    days: list[int]  # 0 is Monday


class AttributeOptions(TypedDict):
    """e.g. {"attribute": "plan", "operator": "equals", "value": "pro"}; the presence
    operators have no value, the numeric ones a number."""

    attribute: str
    operator: str  # a core.conditions operator, or the stored exists / not_exists
    value: NotRequired[str | float]


class ConsentOptions(TypedDict):
    channel: str
    purpose: str


class LifecycleOptions(TypedDict):
    stages: list[str]


class RFMOptions(TypedDict):
    groups: list[str]


class PredictionOptions(TypedDict):
    operator: Literal["at_least", "below"]
    probability: float


class MemberOptions(TypedDict):
    segment: str  # a segment's slug


class RecentOptions(TypedDict):
    segment: str
    hours: int


class RuleSnapshot(TypedDict):
    """A rule as versioned, exported and imported (YAML), and as the compiler sees it."""

    name: str
    slug: str
    enabled: bool
    description: str
    conditions: list[dict[str, Any]]  # {"id": ..., **that condition type's options}
    match_mode: str
    # {"id": ..., **that action type's options}, e.g. {"id": "send_campaign",
    # "campaign": "win-back-sms", "fallback_campaign": "win-back-email"}
    actions: list[dict[str, Any]]
    reentry: str
    reentry_days: int | None
    priority: int
    active_from: str | None  # ISO 8601
    active_until: str | None
    audience_segment: str | None  # a segment's slug
    version: NotRequired[int]


class FiringOutcome(TypedDict, total=False):
    """TriggerFiring.outcome (empty until the actions ran): one entry per action that ran, in
    order, each its type's result with the entry's "id", the last an ActionFailure when one
    stopped the run."""

    actions: list[Mapping[str, object]]


# A fact snapshot: flat keys made of [a-z0-9_] (see triggers.facts), JSON scalars only.
Facts = dict[str, Any]
