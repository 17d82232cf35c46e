"""The base of every action type and its registry. Actions run in a Celery task after the
firing committed (never inside the engine: durable_rules swallows exceptions raised there);
an exception from run() is recorded on the firing and shown in admin."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from django import forms

from triggers.conditions.base import _display, _form_data

if TYPE_CHECKING:
    from triggers.models import TriggerFiring


class ActionError(Exception):
    """An action could not do its work; the message is shown on the firing."""


class ActionType:
    id: ClassVar[str]
    label: ClassVar[str]
    form: ClassVar[type[forms.Form]]

    def run(
        self, options: dict[str, Any], *, firing: TriggerFiring, contact_id: int
    ) -> dict[str, Any]:
        """Do the work; returns what happened (stored on the firing)."""
        raise NotImplementedError

    def describe(self, options: dict[str, Any]) -> str:
        values = {key: _display(value) for key, value in options.items()}
        try:
            return self.label.format_map(values)
        except (KeyError, IndexError, ValueError):
            return self.label

    def clean_options(self, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
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


class ActionRegistry:
    def __init__(self) -> None:
        self._types: dict[str, ActionType] = {}

    def register(self, cls: type[ActionType]) -> type[ActionType]:
        if cls.id in self._types:
            raise ValueError(f"action type {cls.id!r} registered twice")
        self._types[cls.id] = cls()
        return cls

    def get(self, type_id: str) -> ActionType | None:
        return self._types.get(type_id)

    def __getitem__(self, type_id: str) -> ActionType:
        return self._types[type_id]

    def __iter__(self) -> Iterator[ActionType]:
        return iter(self._types.values())

    def choices(self) -> list[tuple[str, str]]:
        return [(t.id, t.label) for t in self._types.values()]


actions = ActionRegistry()
