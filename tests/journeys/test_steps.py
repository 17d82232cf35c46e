"""Each step type accepts its options and refuses bad ones, naming the field's path."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from journeys.steps import steps
from journeys.validation import journey_validate
from segments.models import StaticList
from tests.journeys.helpers import make_example_campaigns, with_steps

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _campaigns() -> None:
    make_example_campaigns()


def _problems(*steps: dict[str, Any]) -> dict[str, str]:
    _, problems = journey_validate(with_steps(*steps))
    return dict(problems)


def _clean(*steps: dict[str, Any]) -> list[dict[str, Any]]:
    clean, problems = journey_validate(with_steps(*steps))
    assert problems == []
    steps_out: list[dict[str, Any]] = clean["steps"]
    return steps_out


def test_a_wait_of_hours_is_accepted() -> None:
    assert _clean({"id": "w", "type": "wait", "hours": 4}) == [
        {"id": "w", "type": "wait", "hours": 4}
    ]


def test_a_wait_of_zero_minutes_is_refused_on_its_field() -> None:
    assert "steps[0].minutes" in _problems({"id": "w", "type": "wait", "minutes": 0})


def test_a_wait_needs_exactly_one_duration() -> None:
    problems = _problems({"id": "w", "type": "wait", "minutes": 5, "days": 1})
    assert "exactly one of" in problems["steps[0]"]


def test_a_wait_until_a_local_time_on_weekdays_is_accepted() -> None:
    step = {"id": "w", "type": "wait", "until": "09:30", "weekdays": ["mon", "fri"]}
    assert _clean(step) == [step]


def test_a_wait_until_an_impossible_time_is_refused() -> None:
    assert "steps[0].until" in _problems({"id": "w", "type": "wait", "until": "25:00"})


def test_weekdays_without_until_are_refused() -> None:
    problems = _problems({"id": "w", "type": "wait", "hours": 1, "weekdays": ["mon"]})
    assert "steps[0].weekdays" in problems


def test_a_keyed_wait_for_with_filters_is_accepted() -> None:
    step = {
        "id": "paid",
        "type": "wait_for",
        "event": "order_completed",
        "where": [{"property": "cart_id", "operator": "equals", "value": "1"}],
        "match_key": "cart_id",
        "hours": 24,
        "matched": [{"id": "done", "type": "exit"}],
        "timed_out": [{"id": "nudge", "type": "send", "campaign": "browse-abandonment"}],
    }
    assert _clean(step) == [step]


def test_a_wait_for_without_a_timeout_is_refused() -> None:
    problems = _problems({"id": "paid", "type": "wait_for", "event": "order_completed"})
    assert "exactly one of" in problems["steps[0]"]


def test_a_wait_for_with_a_bad_filter_names_the_filter() -> None:
    step = {
        "id": "paid",
        "type": "wait_for",
        "event": "order_completed",
        "where": [{"property": "cart id", "value": "1"}],
        "hours": 1,
    }
    assert "where[0].property" in _problems(step)["steps[0].where"]


def test_a_problem_inside_a_wait_for_list_names_its_path() -> None:
    step = {
        "id": "paid",
        "type": "wait_for",
        "event": "order_completed",
        "hours": 1,
        "timed_out": [{"id": "w", "type": "wait", "days": 0}],
    }
    assert "steps[0].timed_out[0].days" in _problems(step)


def test_a_branch_with_an_unknown_condition_is_refused() -> None:
    step = {"id": "b", "type": "branch", "conditions": [{"id": "moon_phase"}]}
    assert "unknown type" in _problems(step)["steps[0].conditions[0].id"]


def test_a_branch_condition_is_validated_by_its_form() -> None:
    step = {
        "id": "b",
        "type": "branch",
        "conditions": [{"id": "event_absent", "event": "order_completed", "hours": 0}],
    }
    assert "steps[0].conditions[0].hours" in _problems(step)


def test_a_branch_with_empty_lists_falls_through() -> None:
    step = {
        "id": "b",
        "type": "branch",
        "match": "any",
        "conditions": [{"id": "event_absent", "event": "order_completed", "hours": 24}],
        "then": [],
        "else": [],
    }
    assert _clean(step)[0]["then"] == []


def test_a_branch_match_other_than_all_or_any_is_refused() -> None:
    step = {
        "id": "b",
        "type": "branch",
        "match": "most",
        "conditions": [{"id": "event_absent", "event": "order_completed", "hours": 24}],
    }
    assert "steps[0].match" in _problems(step)


def test_a_split_with_weights_and_a_holdout_is_accepted() -> None:
    step = {
        "id": "ab",
        "type": "split",
        "holdout": 10,
        "arms": [
            {"weight": 50, "steps": [{"id": "a", "type": "send", "campaign": "win-back-email"}]},
            {"weight": 50, "steps": [{"id": "b", "type": "send", "campaign": "win-back-sms"}]},
        ],
    }
    assert _clean(step) == [step]


def test_a_split_arm_of_weight_zero_is_refused() -> None:
    step = {"id": "ab", "type": "split", "arms": [{"weight": 0, "steps": []}]}
    assert "steps[0].arms[0].weight" in _problems(step)


def test_a_split_without_arms_is_refused() -> None:
    assert "steps[0].arms" in _problems({"id": "ab", "type": "split"})


def test_a_send_of_an_unknown_campaign_is_refused() -> None:
    problems = _problems({"id": "s", "type": "send", "campaign": "nope"})
    assert "no campaign" in problems["steps[0].campaign"]


def test_a_send_whose_fallback_is_itself_is_refused() -> None:
    step = {
        "id": "s",
        "type": "send",
        "campaign": "win-back-sms",
        "fallback_campaign": "win-back-sms",
    }
    assert "steps[0].fallback_campaign" in _problems(step)


def test_an_action_step_is_validated_by_its_action_form() -> None:
    StaticList.objects.create(name="VIP", slug="vip")
    step = {"id": "tag", "type": "action", "action": "add_to_list", "list": "vip"}
    assert _clean(step) == [step]
    problems = _problems({**step, "list": "nope"})
    assert "no static list" in problems["steps[0].list"]


def test_an_action_step_refuses_send_campaign() -> None:
    step = {"id": "s", "type": "action", "action": "send_campaign", "campaign": "win-back-sms"}
    assert "use a send step" in _problems(step)["steps[0].action"]


def test_an_exit_step_takes_no_options() -> None:
    assert "steps[0].after" in _problems({"id": "x", "type": "exit", "after": 1})


def test_an_unknown_step_type_is_refused() -> None:
    assert "unknown step type" in _problems({"id": "x", "type": "teleport"})["steps[0].type"]


def test_a_step_id_used_twice_names_both_paths() -> None:
    problems = _problems(
        {"id": "w", "type": "wait", "hours": 1},
        {
            "id": "b",
            "type": "branch",
            "conditions": [{"id": "event_absent", "event": "order_completed", "hours": 24}],
            "else": [{"id": "w", "type": "exit"}],
        },
    )
    message = problems["steps[1].else[0].id"]
    assert "steps[0]" in message
    assert "steps[1].else[0]" in message


def test_every_problem_is_reported_not_only_the_first() -> None:
    problems = _problems(
        {"id": "w", "type": "wait", "minutes": 0},
        {"id": "s", "type": "send", "campaign": "nope"},
    )
    assert {"steps[0].minutes", "steps[1].campaign"} <= set(problems)


def test_an_unquoted_yaml_time_is_read_as_that_time() -> None:
    # YAML 1.1 turns an unquoted 10:30 into the number 630.
    data = yaml.safe_load("{id: w, type: wait, until: 10:30}")
    assert _clean(data) == [{"id": "w", "type": "wait", "until": "10:30"}]


@pytest.mark.parametrize(
    ("step", "text"),
    [
        ({"type": "wait", "hours": 4}, "wait 4 hours"),
        ({"type": "wait", "until": "09:30", "weekdays": ["mon"]}, "wait until 09:30 on mon"),
        (
            {"type": "wait_for", "event": "order_completed", "match_key": "cart_id", "days": 2},
            "wait for order_completed with the same cart_id, at most 2 days",
        ),
        (
            {"type": "split", "holdout": 10, "arms": [{"weight": 1}, {"weight": 3}]},
            "split at random 1:3, 10% held out",
        ),
        ({"type": "action", "action": "add_to_list", "list": "vip"}, "add to the static list vip"),
    ],
)
def test_each_step_describes_itself_in_words(step: dict[str, Any], text: str) -> None:
    options = {k: v for k, v in step.items() if k != "type"}
    assert steps[step["type"]].describe(options) == text
