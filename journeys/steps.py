"""The step types a journey is built from: small classes with a stable id, a label with
{option} placeholders and an options form, in a registry (the shape of triggers/registry.py).
A step is stored as {"id": <step id>, "type": <type id>, **options, **step lists}; the forms
here validate what the YAML import, the admin and the API accept alike.

Steps that hold step lists (branch, wait_for, split) name them in `step_lists`; the tree
walker in journeys/validation.py validates those lists, so a type validates only its own
options."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

from django import forms
from django.core.validators import RegexValidator

from triggers.actions import actions
from triggers.actions.campaign import SendCampaignForm
from triggers.conditions import conditions
from triggers.conditions.events import EVENT_NAME, WhereField
from triggers.registry import RegisteredType, Registry
from triggers.validation import FieldError, entries_validate

# (path, message): a problem with the step tree, e.g. ("steps[1].then[0].campaign", "...").
Problem = tuple[str, str]
# Validates a nested step list at a path; returns its clean steps.
Walk = Callable[[Any, str, list[Problem]], list[dict[str, Any]]]

MAX_MINUTES = 60 * 24 * 366
PROPERTY_NAME = RegexValidator(
    r"^[A-Za-z0-9_]{1,64}$", "A property name: letters, digits and _, e.g. cart_id."
)
LOCAL_TIME = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DURATION_UNITS = ("minutes", "hours", "days")


def _duration_field(unit: str, top: int, example: int) -> forms.IntegerField:
    return forms.IntegerField(
        required=False, min_value=1, max_value=top, help_text=f"e.g. {example} ({unit})"
    )


def _exactly_one_duration(form: forms.Form, extra: tuple[str, ...] = ()) -> None:
    given = [name for name in (*DURATION_UNITS, *extra) if form.cleaned_data.get(name)]
    failed = [name for name in (*DURATION_UNITS, *extra) if name in form.errors]
    if failed:
        return
    if len(given) != 1:
        names = ", ".join((*DURATION_UNITS, *extra))
        form.add_error(None, f"exactly one of {names} is needed, not {len(given)}.")


def _duration_text(options: Mapping[str, Any]) -> str:
    for unit in DURATION_UNITS:
        if options.get(unit):
            return f"{options[unit]} {unit}"
    return "?"


class LocalTimeField(forms.CharField):
    default_error_messages = {"invalid": "a local time such as 09:30."}

    def to_python(self, value: Any) -> Any:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 24 * 60:
            # YAML 1.1 reads an unquoted 10:30 as the base-60 number 630.
            value = f"{value // 60:02d}:{value % 60:02d}"
        return super().to_python(value)

    def validate(self, value: Any) -> None:
        super().validate(value)
        if value and not LOCAL_TIME.fullmatch(value):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid")


WHERE_ORDER = ("property", "operator", "value")


def key_ordered(data: Mapping[str, Any], keys: Iterable[str]) -> dict[str, Any]:
    """`data` with `keys` first, in that order. PostgreSQL's jsonb keeps no key order, and a
    file reads best in the order the forms declare."""
    out = {key: data[key] for key in keys if key in data}
    out.update((key, value) for key, value in data.items() if key not in out)
    return out


def _where_ordered(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    return [key_ordered(item, WHERE_ORDER) if isinstance(item, dict) else item for item in value]


class StepType(RegisteredType):
    # The keys holding step lists, validated by the tree walker, e.g. ("then", "else").
    step_lists: ClassVar[tuple[str, ...]] = ()

    def key_order(self, step: Mapping[str, Any]) -> tuple[str, ...]:
        return ("id", "type", *self.form.base_fields, *self.step_lists)

    def ordered(self, step: Mapping[str, Any]) -> dict[str, Any]:
        """A stored step (not its nested steps) with its keys in the documented order."""
        out = key_ordered(step, self.key_order(step))
        if "where" in out:
            out["where"] = _where_ordered(out["where"])
        return out

    def known_keys(self) -> set[str]:
        return set(self.form.base_fields) | set(self.step_lists)

    def clean_step(
        self, options: Mapping[str, Any], path: str, walk: Walk, problems: list[Problem]
    ) -> dict[str, Any]:
        """The step's clean options and step lists (its id and type left to the caller);
        every problem is appended to `problems` with its path."""
        for key in sorted(set(options) - self.known_keys()):
            allowed = ", ".join(sorted(self.known_keys() | {"id", "type"}))
            problems.append((f"{path}.{key}", f"unknown key for {self.id}; allowed: {allowed}."))
        own = {k: v for k, v in options.items() if k in self.form.base_fields}
        clean, errors = RegisteredType.clean_options(self, own)
        for field, messages in errors.items():
            where = path if field == "id" else f"{path}.{field}"
            problems.extend((where, message) for message in messages)
        out = {k: v for k, v in clean.items() if k != "id"}
        for key in self.step_lists:
            out[key] = walk(options.get(key) or [], f"{path}.{key}", problems)
        return out


class StepRegistry(Registry[StepType]):
    kind = "step"


steps = StepRegistry()


class WaitForm(forms.Form):
    minutes = _duration_field("minutes", MAX_MINUTES, 240)
    hours = _duration_field("hours", MAX_MINUTES // 60, 4)
    days = _duration_field("days", 366, 1)
    until = LocalTimeField(
        required=False, help_text="A time of day in the contact's zone, e.g. 09:30"
    )
    weekdays = forms.MultipleChoiceField(
        required=False,
        choices=[(day, day) for day in WEEKDAYS],
        help_text="With until: only on these days, e.g. [mon, tue, wed]",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        _exactly_one_duration(self, extra=("until",))
        if data.get("weekdays") and not data.get("until"):
            self.add_error("weekdays", "weekdays go with until, e.g. until: '09:30'.")
        return data


@steps.register
class Wait(StepType):
    id = "wait"
    label = "wait {minutes} min, {hours} h, {days} d or until {until}"
    form = WaitForm

    def describe(self, options: dict[str, Any]) -> str:
        if not options.get("until"):
            return f"wait {_duration_text(options)}"
        days = options.get("weekdays")
        return f"wait until {options['until']}" + (f" on {', '.join(days)}" if days else "")


class WaitForForm(forms.Form):
    event = forms.CharField(max_length=100, validators=[EVENT_NAME], help_text="e.g. cart_updated")
    where = WhereField(
        required=False,
        help_text='Property filters, e.g. [{"property": "category", "value": "kitchen"}]',
    )
    match_key = forms.CharField(
        required=False,
        validators=[PROPERTY_NAME],
        help_text="The awaited event must carry the entry event's value of this property, "
        "e.g. cart_id",
    )
    minutes = _duration_field("minutes", MAX_MINUTES, 30)
    hours = _duration_field("hours", MAX_MINUTES // 60, 24)
    days = _duration_field("days", 366, 2)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        _exactly_one_duration(self)
        return data


@steps.register
class WaitFor(StepType):
    id = "wait_for"
    label = "wait for {event} (same {match_key}), at most {minutes} min, {hours} h or {days} d"
    form = WaitForForm
    step_lists = ("matched", "timed_out")

    def describe(self, options: dict[str, Any]) -> str:
        key = f" with the same {options['match_key']}" if options.get("match_key") else ""
        return f"wait for {options.get('event')}{key}, at most {_duration_text(options)}"


def _condition_ordered(entry: Any) -> Any:
    handler = conditions.get(str(entry.get("id"))) if isinstance(entry, dict) else None
    if handler is None:
        return entry
    out = key_ordered(entry, ("id", *handler.form.base_fields))
    if "where" in out:
        out["where"] = _where_ordered(out["where"])
    return out


class BranchForm(forms.Form):
    match = forms.ChoiceField(
        required=False,
        choices=[("all", "all"), ("any", "any")],
        help_text="all: every condition must hold; any: one is enough. e.g. all",
    )
    since_entry = forms.BooleanField(
        required=False,
        help_text="Count only events since the contact entered the journey (each condition's "
        "window still applies), e.g. true",
    )


@steps.register
class Branch(StepType):
    id = "branch"
    label = "if {match} of the conditions hold"
    form = BranchForm
    step_lists = ("then", "else")

    def key_order(self, step: Mapping[str, Any]) -> tuple[str, ...]:
        return ("id", "type", "conditions", *self.form.base_fields, *self.step_lists)

    def ordered(self, step: Mapping[str, Any]) -> dict[str, Any]:
        out = super().ordered(step)
        out["conditions"] = [_condition_ordered(entry) for entry in out.get("conditions") or []]
        return out

    def describe(self, options: dict[str, Any]) -> str:
        count = len(options.get("conditions") or [])
        since = " since entry" if options.get("since_entry") else ""
        return f"if {options.get('match') or 'all'} of {count} condition(s) hold{since}"

    def known_keys(self) -> set[str]:
        return super().known_keys() | {"conditions"}

    def clean_step(
        self, options: Mapping[str, Any], path: str, walk: Walk, problems: list[Problem]
    ) -> dict[str, Any]:
        out = super().clean_step(options, path, walk, problems)
        if out.get("match") == "all":
            out.pop("match")  # the default: stored absent, so both spellings are one version
        if not out.get("since_entry"):
            out.pop("since_entry", None)  # the same: absent is false
        found: list[FieldError] = []
        out["conditions"] = entries_validate(
            f"{path}.conditions", options.get("conditions"), conditions, found
        )
        problems.extend((problem.path, problem.message) for problem in found)
        return {"conditions": out.pop("conditions"), **out}


class SplitForm(forms.Form):
    holdout = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=99,
        help_text="Percent of contacts who skip every arm and move on, e.g. 10",
    )


class SplitArmForm(forms.Form):
    weight = forms.IntegerField(min_value=1, max_value=10_000, help_text="e.g. 50")


@steps.register
class Split(StepType):
    id = "split"
    label = "split at random (holdout {holdout}%)"
    form = SplitForm

    def key_order(self, step: Mapping[str, Any]) -> tuple[str, ...]:
        return ("id", "type", *self.form.base_fields, "arms")

    def ordered(self, step: Mapping[str, Any]) -> dict[str, Any]:
        out = super().ordered(step)
        if isinstance(out.get("arms"), list):
            out["arms"] = [key_ordered(arm, ("weight", "steps")) for arm in out["arms"]]
        return out

    def describe(self, options: dict[str, Any]) -> str:
        weights = ":".join(str(arm.get("weight")) for arm in options.get("arms") or [])
        holdout = f", {options['holdout']}% held out" if options.get("holdout") else ""
        return f"split at random {weights}{holdout}"

    def known_keys(self) -> set[str]:
        return super().known_keys() | {"arms"}

    def clean_step(
        self, options: Mapping[str, Any], path: str, walk: Walk, problems: list[Problem]
    ) -> dict[str, Any]:
        out = super().clean_step(options, path, walk, problems)
        raw = options.get("arms")
        if not isinstance(raw, list) or not raw:
            problems.append((f"{path}.arms", "a list of arms such as [{weight: 50, steps: []}]."))
            return {**out, "arms": []}
        out["arms"] = [
            self._arm(arm, f"{path}.arms[{index}]", walk, problems) for index, arm in enumerate(raw)
        ]
        return out

    def _arm(self, arm: Any, path: str, walk: Walk, problems: list[Problem]) -> dict[str, Any]:
        if not isinstance(arm, dict):
            problems.append((path, "an arm such as {weight: 50, steps: [...]}."))
            return {}
        for key in sorted(set(arm) - {"weight", "steps"}):
            problems.append((f"{path}.{key}", "unknown key for an arm; allowed: steps, weight."))
        form = SplitArmForm(data={"weight": arm.get("weight")})
        if not form.is_valid():
            problems.extend((f"{path}.weight", str(m)) for m in form.errors.get("weight", []))
        weight = form.cleaned_data.get("weight") if form.is_valid() else None
        return {"weight": weight, "steps": walk(arm.get("steps") or [], f"{path}.steps", problems)}


@steps.register
class Send(StepType):
    id = "send"
    label = "send campaign {campaign}"
    # The rule action's form: the same slugs exist, the same fallback rule holds.
    form = SendCampaignForm


# Rule actions a journey step may not run, with the hint shown when one is asked for: a send
# is its own step type, and a journey starting journeys would need a firing to start from.
NOT_STEP_ACTIONS = {
    "send_campaign": " (use a send step)",
    "start_journey": " (a journey does not start journeys; use a trigger rule)",
}


class ActionStepForm(forms.Form):
    action = forms.ChoiceField(
        choices=[],
        help_text="A trigger action other than send_campaign and start_journey, e.g. set_attribute",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["action"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [c for c in actions.choices() if c[0] not in NOT_STEP_ACTIONS]


@steps.register
class Action(StepType):
    id = "action"
    label = "{action}"
    form = ActionStepForm

    def key_order(self, step: Mapping[str, Any]) -> tuple[str, ...]:
        handler = actions.get(str(step.get("action")))
        fields = tuple(handler.form.base_fields) if handler is not None else ()
        return ("id", "type", "action", *fields)

    def describe(self, options: dict[str, Any]) -> str:
        handler = actions.get(str(options.get("action")))
        if handler is None:
            return str(options.get("action"))
        return handler.describe({k: v for k, v in options.items() if k != "action"})

    def clean_step(
        self, options: Mapping[str, Any], path: str, walk: Walk, problems: list[Problem]
    ) -> dict[str, Any]:
        """The wrapped action's own form validates the rest of the step."""
        type_id = options.get("action")
        handler = actions.get(type_id) if isinstance(type_id, str) else None
        if handler is None or handler.id in NOT_STEP_ACTIONS:
            known = ", ".join(c[0] for c in actions.choices() if c[0] not in NOT_STEP_ACTIONS)
            hint = NOT_STEP_ACTIONS.get(str(type_id), "")
            problems.append(
                (f"{path}.action", f"unknown action {type_id!r}{hint}; one of {known}.")
            )
            return {"action": type_id}
        own = {k: v for k, v in options.items() if k != "action"}
        clean, errors = handler.clean_options(own)
        for field, messages in errors.items():
            # The registry reports unknown options and whole-form problems on "id".
            where = f"{path}.action" if field == "id" else f"{path}.{field}"
            problems.extend((where, str(message)) for message in messages)
        return {"action": handler.id, **{k: v for k, v in clean.items() if k != "id"}}


class ExitForm(forms.Form):
    pass


@steps.register
class Exit(StepType):
    id = "exit"
    label = "exit the journey"
    form = ExitForm
