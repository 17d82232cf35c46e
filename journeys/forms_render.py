"""The journey step editor's rows as template context: each step's id, type and its type's
own fields (from the step registry's forms, bound to what was posted or filled with what was
stored), its nested lists and split arms, a branch's condition rows, and every problem put
next to the field its path names. The tree itself is journeys/forms_steps.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

from django import forms
from django.forms.fields import InvalidJSONInput
from django.utils.datastructures import MultiValueDict
from django.utils.safestring import SafeString

from journeys.forms_steps import (
    ADD_ARM,
    ADD_STEP,
    LIST_LABELS,
    MOVE_UP,
    REFRESH,
    REMOVE_ARM,
    REMOVE_STEP,
    TITLES,
    ArmNode,
    StepNode,
    conditions_widget,
    option_forms,
    path_of,
)
from journeys.steps import StepType, steps
from triggers.actions import actions
from triggers.forms_admin import type_title


class FieldContext(TypedDict):
    name: str
    boxes: bool  # checkboxes, laid out in a row
    label_tag: SafeString
    widget: SafeString
    help: str
    errors: list[str]


def _initial(form_class: type[forms.Form], options: Mapping[str, Any]) -> dict[str, Any]:
    initial = dict(options)
    for name, option in form_class.base_fields.items():
        if isinstance(option, forms.JSONField) and initial.get(name) is None:
            initial[name] = InvalidJSONInput("")  # an empty box, not "null"
    return initial


class Renderer:
    """Builds the template context of a step tree, with `errors` ({path: [messages]}) put
    next to the fields they name."""

    def __init__(self, errors: Mapping[str, list[str]]) -> None:
        from campaigns.models import Campaign

        self.errors = errors
        # Actions by name ("Set attribute"), as the rule editor lists them.
        self.actions = [("", "— choose an action —")] + [
            (item.id, type_title(item)) for item in actions if item.id != "send_campaign"
        ]
        self.campaigns = [
            (slug, f"{name} ({slug}, {channel})")
            for slug, name, channel in Campaign.objects.order_by("name").values_list(
                "slug", "name", "channel"
            )
        ]

    def type_select(self, name: str, value: str, css: str) -> SafeString:
        choices = [("", "— choose a step type —")]
        choices += [(item.id, TITLES.get(item.id, item.id)) for item in steps]
        return forms.Select(choices=choices).render(
            name, value, attrs={"id": f"id_{name}", "class": css}
        )

    def step_list(self, nodes: list[StepNode], prefix: str, label: str = "") -> dict[str, Any]:
        path = path_of(prefix)
        return {
            "prefix": prefix,
            "path": path,
            "label": label,
            "total": len(nodes),
            "errors": self.errors.get(path, []),
            "steps": [self.step(node, f"{prefix}-{i}", i) for i, node in enumerate(nodes)],
            "new_type_select": self.type_select(f"{prefix}-new_type", "", "journey-new-type"),
            "add": ADD_STEP,
        }

    def _campaign_widget(self, bound: forms.BoundField) -> SafeString:
        value = bound.value() or ""
        choices = [("", "— none —" if not bound.field.required else "— choose a campaign —")]
        choices += self.campaigns
        if value and value not in {slug for slug, _ in self.campaigns}:
            choices.append((value, f"{value} (unknown)"))
        return bound.as_widget(widget=forms.Select(choices=choices))

    def fields(self, node: StepNode, prefix: str, path: str) -> list[FieldContext]:
        action_id = (node.raw if node.raw is not None else node.options).get("action")
        out: list[FieldContext] = []
        for form_class in option_forms(node.type, action_id):
            if node.raw is not None:
                data: MultiValueDict[str, Any] = MultiValueDict()
                for key, value in node.raw.items():
                    data.setlist(f"{prefix}-{key}", value if isinstance(value, list) else [value])
                form = form_class(data=data, prefix=prefix)
            else:
                form = form_class(initial=_initial(form_class, node.options), prefix=prefix)
            for name in form.fields:
                bound = form[name]
                if name in ("campaign", "fallback_campaign"):
                    widget = self._campaign_widget(bound)
                elif isinstance(bound.field, forms.MultipleChoiceField):
                    boxes = forms.CheckboxSelectMultiple()
                    boxes.choices = bound.field.widget.choices
                    widget = bound.as_widget(widget=boxes)
                elif (node.type, name) == ("action", "action"):
                    widget = bound.as_widget(
                        widget=forms.Select(choices=self.actions), attrs={"class": "journey-action"}
                    )
                else:
                    widget = bound.as_widget()
                out.append(
                    {
                        "name": name,
                        "boxes": isinstance(bound.field, forms.MultipleChoiceField),
                        "label_tag": bound.label_tag(),
                        "widget": widget,
                        "help": str(bound.help_text),
                        "errors": self.errors.get(f"{path}.{name}", []),
                    }
                )
        return out

    def _conditions(self, node: StepNode, prefix: str, path: str) -> SafeString:
        name = f"{prefix}-conditions"
        widget = conditions_widget(name, f"{path}.conditions")
        widget.path_errors = {
            name + key[len(f"{path}.conditions") :]: messages
            for key, messages in self.errors.items()
            if key.startswith(f"{path}.conditions[")
        }
        return widget.render(name, node.conditions)

    def step(self, node: StepNode, prefix: str, index: int) -> dict[str, Any]:
        path = path_of(prefix)
        handler: StepType | None = steps.get(node.type)
        row_errors = list(self.errors.get(path, []))
        if node.not_a_step:
            row_errors.append("not a step: fix it in the YAML below.")
        id_input = forms.TextInput().render(
            f"{prefix}-id", node.step_id, attrs={"id": f"id_{prefix}-id", "class": "journey-id"}
        )
        context: dict[str, Any] = {
            "prefix": prefix,
            "path": path,
            "index": index,
            "type": node.type,
            "describe": "",
            "row_errors": row_errors,
            "id_input": id_input,
            "id_errors": self.errors.get(f"{path}.id", []),
            "type_select": self.type_select(f"{prefix}-type", node.type, "journey-type"),
            "type_errors": self.errors.get(f"{path}.type", []),
            "fields": self.fields(node, prefix, path),
            "lists": [
                self.step_list(children, f"{prefix}-{key}", LIST_LABELS.get(key, key))
                for key, children in node.lists.items()
            ],
            "arms": [],
            "conditions": None,
            "conditions_errors": self.errors.get(f"{path}.conditions", []),
            "arms_errors": self.errors.get(f"{path}.arms", []),
            "buttons": {"remove": REMOVE_STEP, "up": MOVE_UP, "refresh": REFRESH, "arm": ADD_ARM},
        }
        if handler is not None and node.type == "branch":
            context["conditions"] = self._conditions(node, prefix, path)
        if handler is not None and node.type == "split":
            context["arms"] = [
                self.arm(arm, f"{prefix}-arms-{i}") for i, arm in enumerate(node.arms)
            ]
            context["arms_total"] = len(node.arms)
        return context

    def arm(self, arm: ArmNode, prefix: str) -> dict[str, Any]:
        path = path_of(prefix)
        weight = forms.NumberInput().render(
            f"{prefix}-weight",
            arm.weight if arm.weight is not None else "",
            attrs={"id": f"id_{prefix}-weight", "min": "1", "class": "journey-weight"},
        )
        return {
            "prefix": prefix,
            "path": path,
            "weight": weight,
            "weight_errors": self.errors.get(f"{path}.weight", []),
            "errors": self.errors.get(path, []),
            "steps": self.step_list(arm.steps, f"{prefix}-steps", "steps of this arm"),
            "remove": REMOVE_ARM,
        }
