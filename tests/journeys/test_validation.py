"""A journey's settings: re-entry, goal, unknown keys, entry segment."""

from __future__ import annotations

import pytest

from journeys.validation import journey_validate
from tests.journeys.helpers import example, make_example_campaigns

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _campaigns() -> None:
    make_example_campaigns()


def test_the_documented_example_is_valid() -> None:
    assert journey_validate(example())[1] == []


def test_an_unknown_top_level_key_is_refused() -> None:
    problems = dict(journey_validate({**example(), "colour": "red"})[1])
    assert "unknown key" in problems["colour"]


def test_once_per_days_needs_days() -> None:
    problems = dict(journey_validate({**example(), "reentry": {"mode": "once_per_days"}})[1])
    assert "reentry.days" in problems


def test_once_per_key_needs_a_key() -> None:
    problems = dict(journey_validate({**example(), "reentry": {"mode": "once_per_key"}})[1])
    assert "reentry.key" in problems


def test_an_unknown_reentry_mode_is_refused() -> None:
    problems = dict(journey_validate({**example(), "reentry": {"mode": "twice"}})[1])
    assert "reentry.mode" in problems


def test_a_goal_needs_a_number_of_days() -> None:
    problems = dict(journey_validate({**example(), "goal": {"event": "order_completed"}})[1])
    assert "goal.within_days" in problems


def test_a_goal_filter_is_cleaned_by_the_shared_vocabulary() -> None:
    goal = {
        "event": "order_completed",
        "within_days": 7,
        "where": [{"property": "total", "operator": "between", "value": 1}],
    }
    problems = dict(journey_validate({**example(), "goal": goal})[1])
    assert "goal.where[0].operator" in problems


def test_an_unknown_entry_segment_is_refused() -> None:
    problems = dict(journey_validate({**example(), "entry_segment": "nobody"})[1])
    assert "no segment" in problems["entry_segment"]
