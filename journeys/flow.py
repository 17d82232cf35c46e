"""Finding one's way in a published step tree: where each step is, which step comes after
it, and where a step's nested lists begin. Pure functions of a version's `steps` (no
database), shared by the advancing engine, the ingest path (a `wait_for` matched), the
diagram and the dry run, so all of them agree on what "the next step" is.

A step tree is a list of steps; `branch` holds `then` and `else`, `wait_for` holds
`matched` and `timed_out`, `split` holds `arms[i].steps`. After the last step of a nested
list the contact carries on with the step after the one that holds the list; after the
last top-level step the journey is complete."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

Step = Mapping[str, Any]

# The keys of the step lists each type holds, in diagram order ("arms" is special: a list
# of {"weight", "steps"}).
NESTED_KEYS: dict[str, tuple[str, ...]] = {
    "branch": ("then", "else"),
    "wait_for": ("matched", "timed_out"),
}


@dataclass(frozen=True)
class Place:
    """Where a step sits: its list's owner (None at the top), the list's key ("then",
    "arms[1]"...), its index in that list and the list's length."""

    step: Step
    parent: str | None
    key: str
    index: int
    length: int
    depth: int


def nested_lists(step: Step) -> list[tuple[str, list[Step]]]:
    """The step lists a step holds, as (key, steps): ("then", [...]), ("arms[0]", [...])."""
    if step.get("type") == "split":
        return [(f"arms[{i}]", list(arm.get("steps") or [])) for i, arm in enumerate(step["arms"])]
    return [(key, list(step.get(key) or [])) for key in NESTED_KEYS.get(str(step.get("type")), ())]


class Flow:
    """An index of one version's steps by id."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = steps
        self._places: dict[str, Place] = {}
        self._lists: dict[tuple[str | None, str], Sequence[Step]] = {}
        self._index(steps, parent=None, key="steps", depth=0)

    def _index(self, items: Sequence[Step], *, parent: str | None, key: str, depth: int) -> None:
        self._lists[(parent, key)] = items
        for index, step in enumerate(items):
            step_id = str(step["id"])
            self._places[step_id] = Place(step, parent, key, index, len(items), depth)
            for nested_key, nested in nested_lists(step):
                self._index(nested, parent=step_id, key=nested_key, depth=depth + 1)

    def __contains__(self, step_id: object) -> bool:
        return step_id in self._places

    def __iter__(self) -> Iterator[Step]:
        """Every step, depth first, in document order."""
        return (place.step for place in self._places.values())

    def step(self, step_id: str) -> Step:
        """The step with this id; KeyError when the version has none."""
        return self._places[step_id].step

    def place(self, step_id: str) -> Place:
        return self._places[step_id]

    def first(self) -> str | None:
        """The id of the step a new enrollment starts at; None for an empty tree."""
        return str(self.steps[0]["id"]) if self.steps else None

    def after(self, step_id: str) -> str | None:
        """The step that follows `step_id` once it (and anything nested in it) is done: its
        next sibling, else the step after its owner, up to the top. None: the journey is
        complete."""
        place = self._places[step_id]
        siblings = self._lists[(place.parent, place.key)]
        if place.index + 1 < len(siblings):
            return str(siblings[place.index + 1]["id"])
        if place.parent is None:
            return None
        return self.after(place.parent)

    def enter(self, step_id: str, key: str) -> str | None:
        """The step a contact goes to when `step_id` sends it down its list `key` ("then",
        "matched", "arms[1]"...): that list's first step, or, for an empty list, the step
        after `step_id`. KeyError for a key the step does not hold."""
        if (step_id, key) not in self._lists:
            raise KeyError(f"step {step_id!r} has no list {key!r}")
        items = self._lists[(step_id, key)]
        return str(items[0]["id"]) if items else self.after(step_id)

    def path_to(self, step_id: str) -> list[tuple[str, str]]:
        """The (owner step id, list key) pairs from the top down to `step_id`'s list, e.g.
        [("bought", "then")] for a step inside a branch's then list."""
        trail: list[tuple[str, str]] = []
        place = self._places[step_id]
        while place.parent is not None:
            trail.append((place.parent, place.key))
            place = self._places[place.parent]
        return list(reversed(trail))
