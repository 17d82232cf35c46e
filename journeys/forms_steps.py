"""The step tree of the journey editor: steps read from a POST (or from stored steps, or from
the YAML fallback) as nodes, and turned into the data journey_save validates; drawn as rows
with each type's own form fields from the step registry by journeys/forms_render.py.

Field names follow the error paths: `steps-1-then-0-campaign` is `steps[1].then[0].campaign`,
so a problem found by journeys/validation.py is shown next to the field it names. Branch
conditions are the trigger rule editor's rows (triggers/forms_admin.py), one editor per
branch. Structural buttons (add, remove, move up, add an arm) submit the page and it comes
back re-rendered with nothing saved; journeys/static/journeys/editor.js only submits on a
type change and keeps the place on the page."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from django import forms
from django.utils.safestring import SafeString

from journeys.steps import steps
from triggers.actions import actions
from triggers.conditions import conditions as condition_registry
from triggers.forms_admin import EDITOR_BUTTONS, EntriesValue, RowContext, RuleEntriesWidget

ROOT = "steps"
ADD_STEP = "_journey_add"  # value: a list's prefix, e.g. "steps-1-then"
REMOVE_STEP = "_journey_remove"  # value: a step's prefix, e.g. "steps-1-then-0"
MOVE_UP = "_journey_up"  # value: a step's prefix
ADD_ARM = "_journey_add_arm"  # value: a split step's prefix
REMOVE_ARM = "_journey_remove_arm"  # value: an arm's prefix, e.g. "steps-2-arms-1"
REFRESH = "_journey_refresh"  # re-render with the chosen types' fields
STEP_BUTTONS = (ADD_STEP, REMOVE_STEP, MOVE_UP, ADD_ARM, REMOVE_ARM, REFRESH)
ROW_LIMIT = 100
BLANK: tuple[Any, ...] = (None, "", [])
TITLES = {
    "wait": "Wait",
    "wait_for": "Wait for an event",
    "branch": "Branch: if conditions hold",
    "split": "Split at random",
    "send": "Send a campaign",
    "action": "Action (attribute, list, webhook)",
    "exit": "Exit the journey",
}
LIST_LABELS = {
    "then": "then (the conditions hold)",
    "else": "else",
    "matched": "matched (the event came)",
    "timed_out": "timed out (it did not come)",
}


def editor_requested(data: Mapping[str, Any]) -> bool:
    """True when the POST asks for another look at the editor, not for a save."""
    return any(key in data for key in (*STEP_BUTTONS, *EDITOR_BUTTONS))


@dataclass
class ArmNode:
    weight: Any
    steps: list[StepNode]


@dataclass
class StepNode:
    """One step as the editor shows it: `raw` holds the posted values (rendered back as
    typed), else `options` the stored ones."""

    step_id: str
    type: str
    raw: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    lists: dict[str, list[StepNode]] = field(default_factory=dict)
    arms: list[ArmNode] = field(default_factory=list)
    conditions: EntriesValue | list[Any] | None = None
    not_a_step: bool = False
    fresh: bool = False  # just added: an id is suggested for it


def option_forms(type_id: str, action_id: Any) -> list[type[forms.Form]]:
    """The forms a step's own fields come from; an action step adds its action's form."""
    handler = steps.get(type_id)
    if handler is None:
        return []
    out = [handler.form]
    chosen = actions.get(action_id) if type_id == "action" and isinstance(action_id, str) else None
    if chosen is not None and chosen.id != "send_campaign":
        out.append(chosen.form)
    return out


def _fresh(type_id: str) -> StepNode:
    handler = steps.get(type_id)
    node = StepNode(step_id="", type=type_id if handler else "", fresh=True)
    if handler is not None:
        node.lists = {key: [] for key in handler.step_lists}
    if type_id == "split":
        node.arms = [ArmNode(weight=50, steps=[]), ArmNode(weight=50, steps=[])]
    if type_id == "branch":
        node.conditions = []
    return node


# --- from stored data (or the YAML fallback) ---------------------------------------------


def nodes_from_data(raw: Any) -> list[StepNode]:
    if not isinstance(raw, list):
        return []
    return [_node_from_data(item) for item in raw[:ROW_LIMIT]]


def _node_from_data(item: Any) -> StepNode:
    if not isinstance(item, dict):
        return StepNode(step_id="", type="", not_a_step=True)
    type_id = str(item.get("type") or "")
    handler = steps.get(type_id)
    lists = handler.step_lists if handler is not None else ()
    skip = {"id", "type", "arms", "conditions", *lists}
    node = StepNode(
        step_id=str(item.get("id") or ""),
        type=type_id,
        options={key: value for key, value in item.items() if key not in skip},
    )
    node.lists = {key: nodes_from_data(item.get(key) or []) for key in lists}
    if type_id == "split" and isinstance(item.get("arms"), list):
        node.arms = [
            ArmNode(weight=arm.get("weight"), steps=nodes_from_data(arm.get("steps") or []))
            for arm in item["arms"]
            if isinstance(arm, dict)
        ]
    if type_id == "branch":
        node.conditions = item.get("conditions") or []
    return node


# --- from a POST -------------------------------------------------------------------------


def _count(data: Mapping[str, Any], key: str) -> int:
    try:
        return max(0, min(int(data.get(key) or 0), ROW_LIMIT))
    except (TypeError, ValueError):
        return 0


def _raw_values(form_class: type[forms.Form], data: Any, files: Any, prefix: str) -> dict[str, Any]:
    blank = form_class(prefix=prefix)
    return {
        name: blank[name].field.widget.value_from_datadict(data, files, blank[name].html_name)
        for name in blank.fields
    }


class ConditionsWidget(RuleEntriesWidget):
    """The trigger rule editor's condition rows under one branch, its messages named by the
    journey's path (steps[1].conditions[0].hours) rather than the field prefix."""

    def __init__(self, *, path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.path = path

    def _row_context(self, index: int, row: Any) -> RowContext:
        context = super()._row_context(index, row)
        context["path"] = f"{self.path}[{index}]"
        return context

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        html = super().render(name, value, attrs, renderer)
        # The rule editor names its JSON box by its field ("the conditions as JSON"); here
        # the field is a prefix such as steps-1-conditions, so say which branch it is.
        # Both strings are made of letters, digits, - [ ] . and _ only: nothing to escape.
        return SafeString(html.replace(f"the {name} as JSON", f"the {self.path} as JSON", 1))


def conditions_widget(name: str, path: str) -> ConditionsWidget:
    return ConditionsWidget(
        kind=name, registry=condition_registry, add_label="Add a condition", path=path
    )


def nodes_from_post(data: Any, files: Any, prefix: str = ROOT) -> list[StepNode]:
    out: list[StepNode] = []
    for index in range(_count(data, f"{prefix}-TOTAL")):
        posted = f"{prefix}-{index}"
        if f"{posted}-type" not in data or data.get(REMOVE_STEP) == posted:
            continue
        node = _node_from_post(data, files, posted)
        if data.get(MOVE_UP) == posted and out:
            out.insert(len(out) - 1, node)
        else:
            out.append(node)
    if data.get(ADD_STEP) == prefix:
        out.append(_fresh(str(data.get(f"{prefix}-new_type") or "")))
    return out


def _node_from_post(data: Any, files: Any, prefix: str) -> StepNode:
    type_id = str(data.get(f"{prefix}-type") or "")
    node = StepNode(step_id=str(data.get(f"{prefix}-id") or "").strip(), type=type_id, raw={})
    handler = steps.get(type_id)
    if handler is None:
        return node
    raw: dict[str, Any] = {}
    for form_class in option_forms(type_id, data.get(f"{prefix}-action")):
        raw.update(_raw_values(form_class, data, files, prefix))
    node.raw = raw
    node.lists = {
        key: nodes_from_post(data, files, f"{prefix}-{key}") for key in handler.step_lists
    }
    if type_id == "split":
        node.arms = _arms_from_post(data, files, prefix)
    if type_id == "branch":
        name = f"{prefix}-conditions"
        node.conditions = conditions_widget(name, "").value_from_datadict(data, files, name)
    return node


def _arms_from_post(data: Any, files: Any, prefix: str) -> list[ArmNode]:
    arms: list[ArmNode] = []
    for index in range(_count(data, f"{prefix}-arms-TOTAL")):
        posted = f"{prefix}-arms-{index}"
        if f"{posted}-weight" not in data or data.get(REMOVE_ARM) == posted:
            continue
        weight = str(data.get(f"{posted}-weight") or "").strip()
        arms.append(ArmNode(weight=weight, steps=nodes_from_post(data, files, f"{posted}-steps")))
    if data.get(ADD_ARM) == prefix:
        arms.append(ArmNode(weight="", steps=[]))
    return arms


def all_nodes(nodes: list[StepNode]) -> Iterator[StepNode]:
    for node in nodes:
        yield node
        for children in node.lists.values():
            yield from all_nodes(children)
        for arm in node.arms:
            yield from all_nodes(arm.steps)


def suggest_ids(nodes: list[StepNode]) -> None:
    """A step just added gets an id not used yet, e.g. wait-2; the marketer may rename it."""
    used = {node.step_id for node in all_nodes(nodes)}
    for node in all_nodes(nodes):
        if not node.fresh or not node.type:
            continue
        number = 1
        while f"{node.type.replace('_', '-')}-{number}" in used:
            number += 1
        node.step_id = f"{node.type.replace('_', '-')}-{number}"
        used.add(node.step_id)


# --- to the data journey_save validates --------------------------------------------------


def node_data(node: StepNode) -> dict[str, Any]:
    out: dict[str, Any] = {"id": node.step_id, "type": node.type}
    if node.raw is not None:
        out.update((key, value) for key, value in node.raw.items() if value not in BLANK)
    else:
        out.update(node.options)
    for key, children in node.lists.items():
        out[key] = [node_data(child) for child in children]
    if node.type == "split":
        out["arms"] = [
            {"weight": arm.weight, "steps": [node_data(child) for child in arm.steps]}
            for arm in node.arms
        ]
    if node.type == "branch":
        value = node.conditions
        # Invalid JSON in a branch's fallback box: reported by the form at its path.
        entries = value.entries if isinstance(value, EntriesValue) else value
        out["conditions"] = entries if entries is not None else []
    return out


def steps_data(nodes: list[StepNode]) -> list[dict[str, Any]]:
    return [node_data(node) for node in nodes]


def json_problems(nodes: list[StepNode], prefix: str = ROOT) -> list[tuple[str, str]]:
    """Problems the rows themselves hold: a branch whose conditions JSON does not parse."""
    found: list[tuple[str, str]] = []
    for index, node in enumerate(nodes):
        path = path_of(prefix, index)
        value = node.conditions
        if isinstance(value, EntriesValue) and value.json_error:
            found.append((f"{path}.conditions", value.json_error))
        for key, children in node.lists.items():
            found.extend(json_problems(children, f"{prefix}-{index}-{key}"))
        for number, arm in enumerate(node.arms):
            found.extend(json_problems(arm.steps, f"{prefix}-{index}-arms-{number}-steps"))
    return found


def path_of(prefix: str, index: int | None = None) -> str:
    """steps-1-then (+ 0) -> steps[1].then[0]; steps-2-arms-0-steps -> steps[2].arms[0].steps"""
    parts = prefix.split("-")
    out = parts[0]
    for part in parts[1:]:
        out += f"[{part}]" if part.isdigit() else f".{part}"
    return out if index is None else f"{out}[{index}]"
