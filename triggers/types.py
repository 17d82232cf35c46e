"""The shapes of the JSON that trigger rules store, and of the facts the engine matches."""

from __future__ import annotations

from typing import Any, NotRequired, TypedDict


class ConditionData(TypedDict):
    """One entry of TriggerRule.conditions: the type's id plus its options, e.g.
    {"id": "event_count", "event": "product_viewed", "count": 3, "hours": 24}."""

    id: str


class ActionData(TypedDict):
    """One entry of TriggerRule.actions, e.g. {"id": "send_campaign", "campaign": "win-back-sms",
    "fallback_campaign": "win-back-email"}."""

    id: str


class RuleSnapshot(TypedDict):
    """A rule as versioned, exported and imported (YAML), and as the compiler sees it."""

    name: str
    slug: str
    enabled: bool
    description: str
    conditions: list[dict[str, Any]]
    match_mode: str
    actions: list[dict[str, Any]]
    reentry: str
    reentry_days: int | None
    priority: int
    active_from: str | None  # ISO 8601
    active_until: str | None
    audience_segment: str | None  # a segment's slug
    version: NotRequired[int]


class FiringOutcome(TypedDict, total=False):
    """TriggerFiring.outcome: one entry per action, in order."""

    actions: list[dict[str, Any]]


# A fact snapshot: flat keys made of [a-z0-9_] (see triggers.facts), JSON scalars only.
Facts = dict[str, Any]
