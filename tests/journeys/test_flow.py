"""journeys/flow.py: where each step of a tree is and which step comes after it."""

from __future__ import annotations

from typing import Any

import pytest

from journeys.flow import Flow

TREE: list[dict[str, Any]] = [
    {"id": "cool-off", "type": "wait", "minutes": 240},
    {
        "id": "bought",
        "type": "branch",
        "conditions": [],
        "then": [
            {"id": "email-1", "type": "send", "campaign": "a"},
            {
                "id": "ab",
                "type": "split",
                "arms": [
                    {"weight": 1, "steps": [{"id": "arm-a", "type": "wait", "days": 1}]},
                    {"weight": 1, "steps": []},
                ],
            },
        ],
        "else": [],
    },
    {
        "id": "cart",
        "type": "wait_for",
        "event": "cart_updated",
        "hours": 1,
        "matched": [{"id": "bye", "type": "exit"}],
        "timed_out": [],
    },
    {"id": "last", "type": "wait", "days": 1},
]


def test_after_walks_siblings_then_up_to_the_owner_and_ends_at_the_top() -> None:
    flow = Flow(TREE)
    assert flow.first() == "cool-off"
    assert flow.after("cool-off") == "bought"
    assert flow.after("email-1") == "ab"
    assert flow.after("arm-a") == "cart"  # end of an arm, end of then: after the branch
    assert flow.after("bye") == "last"
    assert flow.after("last") is None


def test_enter_goes_to_a_lists_first_step_or_past_an_empty_list() -> None:
    flow = Flow(TREE)
    assert flow.enter("bought", "then") == "email-1"
    assert flow.enter("bought", "else") == "cart"
    assert flow.enter("ab", "arms[0]") == "arm-a"
    assert flow.enter("ab", "arms[1]") == "cart"
    assert flow.enter("cart", "matched") == "bye"
    assert flow.enter("cart", "timed_out") == "last"
    with pytest.raises(KeyError):
        flow.enter("cool-off", "then")


def test_places_paths_and_iteration_cover_every_step() -> None:
    flow = Flow(TREE)
    assert [step["id"] for step in flow] == [
        "cool-off", "bought", "email-1", "ab", "arm-a", "cart", "bye", "last",
    ]  # fmt: skip
    assert flow.path_to("arm-a") == [("bought", "then"), ("ab", "arms[0]")]
    assert flow.place("arm-a").depth == 2
    assert "nope" not in flow and "cart" in flow
    assert Flow([]).first() is None
