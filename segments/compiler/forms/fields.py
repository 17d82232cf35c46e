"""Form fields for condition options read from JSON: strict about types (JSON true is not 1,
a number is not a text) and with errors written as short phrases."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError

from core.conditions import JsonScalar

MAX_DAYS = 3650

MESSAGES = {
    "required": "is required",
    "invalid": "is not valid",
    "invalid_choice": "%(value)r is not one of the choices",
    "max_length": "must be at most %(limit_value)d characters",
}


def choice_field(
    choices: Sequence[tuple[str, str]],
    *,
    label: str,
    field_class: type[forms.ChoiceField] = forms.ChoiceField,
    **kwargs: Any,
) -> forms.ChoiceField:
    messages = {
        **MESSAGES,
        "invalid_choice": f"%(value)r is not one of: {', '.join(c for c, _ in choices)}",
    }
    return field_class(choices=choices, label=label, error_messages=messages, **kwargs)


def positive_int_field(
    *, label: str, maximum: int = MAX_DAYS, minimum: int = 1, **kwargs: Any
) -> forms.IntegerField:
    word = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
    return forms.IntegerField(
        label=label,
        min_value=minimum,
        max_value=maximum,
        error_messages={
            **MESSAGES,
            "invalid": f"must be {word}",
            "min_value": f"must be {word}",
            "max_value": f"must be at most {maximum}",
        },
        **kwargs,
    )


class StrictIntegerField(forms.IntegerField):
    """JSON true is not 1, and 2.5 is not 2."""

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        value = super().to_python(value)
        return None if value is None else int(value)


class TextField(forms.CharField):
    """Text only: a JSON number or list is an error, not silently turned into text."""

    def to_python(self, value: Any) -> str:
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"must be a text, got {value!r}")
        return cast(str, super().to_python(value))


class SlugTextField(forms.SlugField):
    def to_python(self, value: Any) -> str:
        if value is not None and not isinstance(value, str):
            raise ValidationError(f"must be a text, got {value!r}")
        return cast(str, super().to_python(value))


class ListField(forms.Field):
    """A list of non-empty strings, given as a JSON list or as comma-separated text (the
    builder's text inputs)."""

    def __init__(self, *, item: Callable[[str], str] | None = None, **kwargs: Any) -> None:
        self.item = item
        kwargs.setdefault("error_messages", MESSAGES)
        kwargs.setdefault("help_text", "Comma-separated.")
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> list[str]:
        if value in (None, "", []):
            return []
        if isinstance(value, str):
            items: list[Any] = [part.strip() for part in value.split(",") if part.strip()]
        elif isinstance(value, list | tuple):
            items = list(value)
        else:
            raise ValidationError(f"must be a list, got {value!r}")
        result = []
        for index, raw in enumerate(items):
            if not isinstance(raw, str) or not raw.strip():
                raise ValidationError(f"item {index} must be a non-empty text, got {raw!r}")
            text = raw.strip()
            if self.item is not None:
                try:
                    text = self.item(text)
                except ValidationError as exc:
                    raise ValidationError(f"item {index}: {'; '.join(exc.messages)}") from exc
            result.append(text)
        return result

    def prepare_value(self, value: Any) -> Any:
        return ", ".join(value) if isinstance(value, list | tuple) else value


class JsonValueField(forms.Field):
    """A comparison value: a text, number or true/false, or a list of those (for "in"). The
    builder sends JSON text; stored definitions hold the value itself."""

    widget = forms.TextInput

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault(
            "help_text", 'Text, a number, or for "is one of" a JSON list such as ["pro", "team"].'
        )
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> JsonScalar | list[JsonScalar] | None:
        if value is None:
            return None
        if isinstance(value, list):
            for index, item in enumerate(value):
                if not isinstance(item, str | int | float | bool):
                    raise ValidationError(f"item {index} must be a text or a number, got {item!r}")
            return value
        if isinstance(value, str | int | float | bool):
            return value
        raise ValidationError(f"must be a text, a number or a list, got {value!r}")

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list | tuple):
            return json.dumps(list(value))
        return value
