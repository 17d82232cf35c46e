"""Builders shared by the trigger tests."""

from __future__ import annotations

from typing import Any

from triggers.models import TriggerRule
from triggers.services.rules import trigger_rule_save


def rule_data(slug: str = "browse-abandonment", **overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": slug.replace("-", " ").capitalize(),
        "slug": slug,
        "enabled": True,
        "description": "",
        "conditions": [
            {"id": "event_count", "event": "product_viewed", "count": 3, "hours": 24},
            {"id": "event_absent", "event": "order_completed", "hours": 24},
        ],
        "match_mode": "all",
        "actions": [{"id": "set_attribute", "attribute": "nudged", "value": "yes"}],
        "reentry": "once_per_days",
        "reentry_days": 7,
        "priority": 0,
        "active_from": None,
        "active_until": None,
        "audience_segment": None,
    }
    data.update(overrides)
    return data


def make_rule(slug: str = "browse-abandonment", **overrides: Any) -> TriggerRule:
    return trigger_rule_save(data=rule_data(slug, **overrides), via="test")
