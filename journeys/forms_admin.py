"""The journey form of the admin: the settings as ordinary fields and the steps as rows
(journeys/forms_steps.py), with the steps' YAML as a fallback on the same page. Whatever
is posted becomes the data `journey_save` takes, checked by journey_validate (the very check
of the YAML import); each problem comes back next to the field its path names and in the
summary at the top, and nothing is saved while any is left."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from django import forms
from django.core.exceptions import ValidationError
from django.forms.fields import InvalidJSONInput
from django.forms.utils import ErrorDict
from django.template.loader import render_to_string
from django.utils.safestring import SafeString

from journeys.forms_render import Renderer
from journeys.forms_steps import (
    ROOT,
    StepNode,
    editor_requested,
    json_problems,
    nodes_from_data,
    nodes_from_post,
    steps_data,
    suggest_ids,
)
from journeys.models import Journey
from journeys.steps import Problem
from journeys.validation import journey_validate, steps_validate
from journeys.yaml_io import steps_yaml

YAML_NAME = f"{ROOT}-yaml"
USE_YAML = f"{ROOT}-use_yaml"
# Where a settings problem is shown: its path -> the form field.
SETTINGS_FIELDS = {
    "name": "name",
    "slug": "slug",
    "description": "description",
    "enabled": "enabled",
    "status": "status",
    "entry_segment": "entry_segment",
    "reentry": "reentry_mode",
    "reentry.mode": "reentry_mode",
    "reentry.days": "reentry_days",
    "reentry.key": "reentry_key",
    "goal": "goal_event",
    "goal.event": "goal_event",
    "goal.within_days": "goal_within_days",
    "goal.where": "goal_where",
}


@dataclass
class StepsValue:
    """The steps as posted: from the rows, or from the YAML when the marketer chose it."""

    source: str  # "rows" or "yaml"
    nodes: list[StepNode] = field(default_factory=list)
    data: Any = None
    yaml_text: str = ""
    yaml_error: str = ""


def yaml_steps(text: str) -> tuple[Any, str]:
    """(the steps, "") or (None, the reason). Takes `steps: [...]`, as shown, or a bare list."""
    try:
        loaded = yaml.safe_load(text) if text.strip() else []
    except yaml.YAMLError as exc:
        return None, f"not valid YAML: {exc}"
    if isinstance(loaded, dict) and set(loaded) == {"steps"}:
        loaded = loaded["steps"]
    if not isinstance(loaded, list):
        return None, "a list of steps under steps:, e.g. steps: [{id: done, type: exit}]."
    return loaded, ""


class StepsWidget(forms.Widget):
    """The rows and the YAML fallback. The form sets `path_errors` ({path: [message]}) after
    validation, so each message is drawn next to its field."""

    template = "admin/journeys/journey/steps_editor.html"

    def __init__(self) -> None:
        super().__init__()
        self.path_errors: dict[str, list[str]] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> StepsWidget:
        copy = super().__deepcopy__(memo)
        copy.path_errors = {}
        return copy

    def use_required_attribute(self, initial: Any) -> bool:
        return False

    def id_for_label(self, id_: str) -> str:
        return ""

    def value_from_datadict(self, data: Any, files: Any, name: str) -> Any:
        text = str(data.get(YAML_NAME, ""))
        if data.get(USE_YAML):
            value = StepsValue(source="yaml", yaml_text=text)
            value.data, value.yaml_error = yaml_steps(text)
            value.nodes = nodes_from_data(value.data)
            return value
        if f"{ROOT}-TOTAL" not in data:
            return None  # no editor posted (a script changing settings): the steps stay
        nodes = nodes_from_post(data, files)
        suggest_ids(nodes)
        return StepsValue(source="rows", nodes=nodes, data=steps_data(nodes), yaml_text=text)

    def render(
        self, name: str, value: Any, attrs: dict[str, Any] | None = None, renderer: Any = None
    ) -> SafeString:
        if not isinstance(value, StepsValue):
            stored = list(value) if isinstance(value, list) else []
            value = StepsValue(source="rows", nodes=nodes_from_data(stored), data=stored)
        if value.source == "rows":
            # The rows as YAML, as posted: the box always shows what the rows say.
            value.yaml_text = steps_yaml(value.data if isinstance(value.data, list) else [])
        yaml_errors = [f"{path}: {m}" for path, ms in self.path_errors.items() for m in ms]
        context = {
            "editor": Renderer(self.path_errors).step_list(value.nodes, ROOT),
            "yaml_name": YAML_NAME,
            "use_yaml_name": USE_YAML,
            "use_yaml": value.source == "yaml",
            "yaml_text": value.yaml_text,
            "yaml_open": value.source == "yaml",
            "yaml_errors": ([value.yaml_error] if value.yaml_error else [])
            + (yaml_errors if value.source == "yaml" else []),
        }
        return SafeString(render_to_string(self.template, context))


class StepsField(forms.Field):
    widget = StepsWidget

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def clean(self, value: Any) -> Any:
        if isinstance(value, StepsValue) and value.yaml_error:
            raise ValidationError(f"steps: {value.yaml_error}", code="invalid")
        return value

    def bound_data(self, data: Any, initial: Any) -> Any:
        return initial if data is None else data

    def has_changed(self, initial: Any, data: Any) -> bool:
        if not isinstance(data, StepsValue):
            return False
        clean, problems = steps_validate(data.data)
        return bool(problems) or clean != list(initial or [])


class JourneyAdminForm(forms.ModelForm[Journey]):
    """journey_save validates and saves: the model's own checks do not run here
    (`_post_clean` is empty), so each rule is stated once, in journeys/validation.py."""

    steps = StepsField(label="Steps", help_text="One row per step, in the order they run.")

    class Meta:
        model = Journey
        fields = (
            "name",
            "slug",
            "description",
            "enabled",
            "status",
            "entry_segment",
            "reentry_mode",
            "reentry_days",
            "reentry_key",
            "goal_event",
            "goal_within_days",
            "goal_where",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        version = self.instance.current_version if self.instance.pk else None
        self.initial["steps"] = list(version.steps) if version is not None else []
        if self.instance.pk and "slug" in self.fields:
            # Saving finds the journey by its slug: renaming it would make another one.
            self.fields["slug"].disabled = True
        if "goal_where" in self.fields:
            self.fields["goal_where"].widget.attrs.update({"rows": 2, "cols": 60})
            if not self.instance.goal_where:
                self.initial["goal_where"] = InvalidJSONInput("")  # an empty box, not "[]"
        self.problems: list[Problem] = []

    @property
    def editor_only(self) -> bool:
        """A button of the step editor was pressed: re-render, don't validate or save."""
        return self.is_bound and editor_requested(self.data)

    def full_clean(self) -> None:
        if self.editor_only:
            self._errors = ErrorDict()
            self.cleaned_data = {}
            return
        super().full_clean()

    def is_valid(self) -> bool:
        return super().is_valid() and not self.editor_only

    def _post_clean(self) -> None:
        pass

    def journey_data(self) -> dict[str, Any]:
        """The posted journey as journey_save takes it (the YAML import's shape)."""
        cleaned = self.cleaned_data
        mode = cleaned.get("reentry_mode") or Journey.Reentry.ONCE_EVER
        reentry: dict[str, Any] = {"mode": mode}
        if mode == Journey.Reentry.ONCE_PER_DAYS:
            reentry["days"] = cleaned.get("reentry_days")
        if mode == Journey.Reentry.ONCE_PER_KEY:
            reentry["key"] = cleaned.get("reentry_key") or ""
        goal: dict[str, Any] | None = None
        if cleaned.get("goal_event") or cleaned.get("goal_within_days"):
            goal = {"event": cleaned.get("goal_event") or "", "within_days": None}
            goal["within_days"] = cleaned.get("goal_within_days")
            if cleaned.get("goal_where"):
                goal["where"] = cleaned["goal_where"]
        segment = cleaned.get("entry_segment")
        value = cleaned.get("steps")
        stored = self.initial.get("steps") or []
        steps = value.data if isinstance(value, StepsValue) else stored
        return {
            "slug": cleaned.get("slug") or self.instance.slug or "",
            "name": cleaned.get("name") or "",
            "description": cleaned.get("description") or "",
            "enabled": bool(cleaned.get("enabled")),
            "status": cleaned.get("status") or None,
            "reentry": reentry,
            "goal": goal,
            "entry_segment": segment.slug if segment is not None else None,
            "steps": steps,
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        # Checked even when a field already failed, so every problem shows at once; a field
        # that failed its own check is not reported twice.
        failed = set(self.errors)
        _, problems = journey_validate(self.journey_data())
        value = cleaned.get("steps")
        if isinstance(value, StepsValue) and value.source == "rows":
            problems.extend(json_problems(value.nodes))
        if "steps" in failed:
            problems = [p for p in problems if not p[0].startswith(ROOT)]
        if not self.instance.pk:
            slug = cleaned.get("slug")
            if slug and Journey.objects.filter(slug=slug).exists():
                problems.append(("slug", f"a journey {slug!r} exists already: change it there."))
        self.problems = problems
        self._place(problems, failed)
        return cleaned

    def _place(self, problems: list[Problem], failed: set[str]) -> None:
        step_errors: dict[str, list[str]] = {}
        for path, message in problems:
            self.add_error(None, f"{path}: {message}")
            if path == ROOT or path.startswith((f"{ROOT}[", f"{ROOT}.")):
                step_errors.setdefault(path, []).append(message)
                continue
            name = SETTINGS_FIELDS.get(path)
            if name is None and path.startswith("goal.where"):
                name = "goal_where"
            if name is not None and name in self.fields and name not in failed:
                self.add_error(name, f"{path}: {message}")
        widget = self.fields["steps"].widget
        if isinstance(widget, StepsWidget):
            widget.path_errors = step_errors
