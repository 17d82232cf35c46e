"""Form fields of the shared vocabulary."""

from __future__ import annotations

from typing import Any

from django import forms

from core.conditions.values import operator_normalise


class OperatorField(forms.ChoiceField):
    """An operator choice that reads every stored spelling ("exists" is "is_set"), both when
    a stored option is validated and when it is shown in a form again."""

    def to_python(self, value: Any) -> str:
        return operator_normalise(super().to_python(value))

    def prepare_value(self, value: Any) -> Any:
        return operator_normalise(value) if isinstance(value, str) else value
