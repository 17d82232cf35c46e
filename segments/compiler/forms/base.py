"""What every condition form shares: the contact fields and keys a condition may name, the
value operators, and the base form."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django import forms

from core.conditions import ValueTest, WhereDialect, operator_choices, value_test_describe
from segments.compiler.types import Condition

# Contact columns a condition may test; everything else is a custom attribute.
CONTACT_FIELDS = (
    "email",
    "phone",
    "external_id",
    "first_name",
    "last_name",
    "locale",
    "timezone",
    "country",
)
ATTRIBUTE_PREFIX = "attributes."
# A custom attribute or event property key. It must not look like a number: Django's JSON
# key lookups read a numeric key as an array index.
KEY_RE = re.compile(r"(?!.*__)[A-Za-z_][A-Za-z0-9_\-]{0,63}")

# Segments compare text in SQL with icontains.
OPERATOR_LABELS = {"contains": "contains (ignoring case)"}
VALUE_OPERATORS = operator_choices(
    "equals",
    "not_equals",
    "in",
    "contains",
    "gt",
    "lt",
    "is_set",
    "is_not_set",
    labels=OPERATOR_LABELS,
)
WHERE = WhereDialect(
    operators=tuple(name for name, _ in VALUE_OPERATORS),
    key_re=KEY_RE,
    key_hint="letters, digits, _ and -, not starting with a digit, no double underscore",
)


class ConditionForm(forms.Form):
    """Options of one condition type. Subclasses set `condition_class`, `label` (a phrase
    with {placeholders} for the builder) and implement `to_condition` and `describe`."""

    condition_class: ClassVar[type[Condition]]
    label: ClassVar[str]

    def to_condition(self) -> Condition:
        raise NotImplementedError

    @classmethod
    def describe(cls, condition: Any) -> str:
        raise NotImplementedError

    def path_errors(self) -> list[tuple[str, str]]:
        """(option path relative to the condition, message) for every error."""
        found: list[tuple[str, str]] = []
        for name, messages in self.errors.items():
            for message in messages:
                found.append(("" if name == "__all__" else name, str(message)))
        return found


def value_text(test: ValueTest) -> str:
    return value_test_describe(test, labels=OPERATOR_LABELS)
