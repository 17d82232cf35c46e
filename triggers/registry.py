"""What condition types and action types share: a stable id, a label with {option}
placeholders, an options form that validates stored JSON, and a registry the admin, the
validation and the compiler walk."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar, Generic, TypeVar

from django import forms


class RegisteredType:
    id: ClassVar[str]
    label: ClassVar[str]  # with {option} placeholders
    form: ClassVar[type[forms.Form]]

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


T = TypeVar("T", bound=RegisteredType)


class Registry(Generic[T]):
    kind: ClassVar[str] = "type"

    def __init__(self) -> None:
        self._types: dict[str, T] = {}

    def register(self, cls: type[T]) -> type[T]:
        if cls.id in self._types:
            raise ValueError(f"{self.kind} type {cls.id!r} registered twice")
        self._types[cls.id] = cls()
        return cls

    def get(self, type_id: str) -> T | None:
        return self._types.get(type_id)

    def __getitem__(self, type_id: str) -> T:
        return self._types[type_id]

    def __iter__(self) -> Iterator[T]:
        return iter(self._types.values())

    def choices(self) -> list[tuple[str, str]]:
        return [(t.id, t.label) for t in self._types.values()]
