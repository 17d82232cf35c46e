"""Builders shared by the journey tests."""

from __future__ import annotations

import copy
from typing import Any

import yaml

from campaigns.models import Campaign

# The example of the journeys documentation, exactly as a marketer writes it.
EXAMPLE_YAML = """\
slug: browse-follow-up
name: Browse follow-up
enabled: true
reentry: {mode: once_per_days, days: 7}
goal: {event: order_completed, within_days: 7}
steps:
  - {id: cool-off, type: wait, minutes: 240}
  - id: bought
    type: branch
    conditions: [{id: event_absent, event: order_completed, hours: 24}]
    then:
      - {id: email-1, type: send, campaign: browse-abandonment}
      - {id: wait-day, type: wait, days: 1}
      - {id: sms-1, type: send, campaign: win-back-sms, fallback_campaign: win-back-email}
    else:
      - {id: done, type: exit}
"""


def example() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(EXAMPLE_YAML)
    return copy.deepcopy(data)


def make_example_campaigns() -> None:
    for slug, channel in (
        ("browse-abandonment", "email"),
        ("win-back-sms", "sms"),
        ("win-back-email", "email"),
    ):
        Campaign.objects.create(name=slug, slug=slug, channel=channel)


def with_steps(*steps: dict[str, Any]) -> dict[str, Any]:
    data = example()
    data["steps"] = list(steps)
    return data
