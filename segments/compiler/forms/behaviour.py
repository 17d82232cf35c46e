"""Conditions on what the contact did: events counted in a window (with property filters),
and days since the last activity or purchase."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from core.conditions import PropertyFilter, where_clean
from segments.compiler.forms.base import WHERE, ConditionForm, value_text
from segments.compiler.forms.fields import (
    MESSAGES,
    StrictIntegerField,
    TextField,
    choice_field,
    positive_int_field,
)
from segments.compiler.types import BehaviourCondition, RecencyCondition

BEHAVIOUR_OPERATORS = (
    ("at_least", "at least"),
    ("at_most", "at most"),
    ("exactly", "exactly"),
    ("none", "not at all"),
)


class BehaviourForm(ConditionForm):
    condition_class = BehaviourCondition
    label = "did {event} {operator} {count} times in the last {days} days"

    event = TextField(
        label="event", max_length=100, error_messages=MESSAGES, help_text="e.g. product_viewed"
    )
    operator = choice_field(BEHAVIOUR_OPERATORS, label="how often")
    count = StrictIntegerField(
        label="times",
        required=False,
        min_value=0,
        max_value=1_000_000,
        error_messages={
            **MESSAGES,
            "invalid": "must be a whole number",
            "min_value": "must not be negative",
        },
    )
    days = positive_int_field(label="in the last (days)")
    where = forms.JSONField(
        label="where (event properties)",
        required=False,
        help_text='A list of filters, e.g. [{"property": "category", "operator": "equals", '
        '"value": "kitchen"}]',
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.filter_errors: list[tuple[str, str]] = []

    def clean_where(self) -> tuple[PropertyFilter, ...]:
        filters, self.filter_errors = where_clean(self.cleaned_data.get("where"), dialect=WHERE)
        if self.filter_errors:
            raise ValidationError("has invalid property filters")
        return filters

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        operator, count = data.get("operator"), data.get("count")
        if operator == "none":
            if count not in (None, 0):
                self.add_error("count", 'must be left out for "none" (did not do it at all)')
            data["count"] = 0
        elif operator is not None and "count" not in self.errors:
            if count is None:
                self.add_error("count", f"is required for {operator}")
            elif operator == "at_least" and count < 1:
                self.add_error("count", 'must be at least 1 for at_least; "none" means not at all')
        return data

    def path_errors(self) -> list[tuple[str, str]]:
        found = [item for item in super().path_errors() if item[0] != "where"]
        return found + self.filter_errors

    def to_condition(self) -> BehaviourCondition:
        data = self.cleaned_data
        return BehaviourCondition(
            event=data["event"].strip(),
            operator=data["operator"],
            count=data["count"],
            days=data["days"],
            where=data["where"],
        )

    @classmethod
    def describe(cls, condition: BehaviourCondition) -> str:
        how = (
            "did not do"
            if condition.operator == "none"
            else f"did {condition.operator.replace('_', ' ')} {condition.count} times"
        )
        text = f"{how} {condition.event} in the last {condition.days} days"
        if condition.where:
            text += " where " + " and ".join(
                f"{item.property} {value_text(item.test)}" for item in condition.where
            )
        return text


class RecencyForm(ConditionForm):
    condition_class = RecencyCondition
    label = "days since last {of} {operator} {days}"

    of = choice_field((("activity", "activity"), ("purchase", "purchase")), label="since last")
    operator = choice_field(
        (
            ("more_than", "more than"),
            ("at_least", "at least"),
            ("less_than", "less than"),
            ("at_most", "at most"),
        ),
        label="is",
    )
    days = positive_int_field(label="days")
    include_never = forms.BooleanField(
        label="include contacts who never did",
        required=False,
        help_text="Counts contacts with no activity (or no purchase) as matching "
        "more than / at least. Off by default: they never match.",
    )

    def to_condition(self) -> RecencyCondition:
        data = self.cleaned_data
        return RecencyCondition(
            of=data["of"],
            operator=data["operator"],
            days=data["days"],
            include_never=data["include_never"],
        )

    @classmethod
    def describe(cls, condition: RecencyCondition) -> str:
        text = (
            f"last {condition.of} {condition.operator.replace('_', ' ')} {condition.days} days ago"
        )
        return text + (" (or never)" if condition.include_never else "")
