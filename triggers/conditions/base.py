"""The base of every condition type, and the registry the admin, validation and the compiler
walk. One small class per module, like Sentry's rule conditions."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any, ClassVar

from django import forms
from django.db.models import Q

from triggers.facts import Need

# A durable_rules JSON expression over one fact snapshot, e.g. {"$gte": {"ev_1a2b": 3}}.
Expression = dict[str, Any]


class ConditionType:
    id: ClassVar[str]
    label: ClassVar[str]  # with {option} placeholders
    form: ClassVar[type[forms.Form]]
    # True when the answer can change with the clock alone (sweeps re-check these rules).
    time_dependent: ClassVar[bool] = False

    def facts_needed(self, options: dict[str, Any]) -> list[Need]:
        raise NotImplementedError

    def compile(self, options: dict[str, Any]) -> Expression:
        """The durable_rules expression: pure, over the keys facts_needed() names."""
        raise NotImplementedError

    def candidates(self, options: dict[str, Any], *, now: dt.datetime) -> Q | None:
        """A Contact filter that every contact who can match satisfies (None: no cheap
        narrowing), so sweeps only build snapshots for contacts that can match."""
        return None

    def describe(self, options: dict[str, Any]) -> str:
        values = {key: _display(value) for key, value in options.items()}
        try:
            return self.label.format_map(values)
        except (KeyError, IndexError, ValueError):
            return self.label

    def clean_options(self, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """Validate with the form; returns (cleaned options, {field: [messages]})."""
        unknown = sorted(set(options) - set(self.form.base_fields) - {"id"})
        form = self.form(data=_form_data(self.form, options))
        errors: dict[str, list[str]] = {}
        if unknown:
            errors["id"] = [f"unknown option(s) for {self.id}: {', '.join(unknown)}"]
        if not form.is_valid():
            for field, messages in form.errors.items():
                errors.setdefault("id" if field == "__all__" else field, []).extend(
                    str(message) for message in messages
                )
            return {}, errors
        cleaned = {k: v for k, v in form.cleaned_data.items() if v not in (None, "", [])}
        return {"id": self.id, **cleaned}, errors


def _display(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_display(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _form_data(form_class: type[forms.Form], options: dict[str, Any]) -> dict[str, Any]:
    """Options as form data: booleans and lists pass through, JSON fields get their JSON."""
    import json

    data: dict[str, Any] = {}
    for name, field in form_class.base_fields.items():
        if name not in options:
            continue
        value = options[name]
        if isinstance(field, forms.JSONField) and not isinstance(value, str):
            data[name] = json.dumps(value)
        elif value is None:
            continue
        else:
            data[name] = value
    return data


class ConditionRegistry:
    def __init__(self) -> None:
        self._types: dict[str, ConditionType] = {}

    def register(self, cls: type[ConditionType]) -> type[ConditionType]:
        if cls.id in self._types:
            raise ValueError(f"condition type {cls.id!r} registered twice")
        self._types[cls.id] = cls()
        return cls

    def get(self, type_id: str) -> ConditionType | None:
        return self._types.get(type_id)

    def __iter__(self) -> Iterator[ConditionType]:
        return iter(self._types.values())

    def choices(self) -> list[tuple[str, str]]:
        return [(t.id, t.label) for t in self._types.values()]


conditions = ConditionRegistry()
