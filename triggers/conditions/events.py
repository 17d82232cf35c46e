"""Behaviour in a window: "product_viewed at least 3 times in 24 hours", with property
filters, and its absence: "no order_completed in 24 hours"."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db.models import Q

from crm.models import Event
from triggers.conditions.base import ConditionType, Expression, conditions
from triggers.facts import EventCountNeed, EventFilter, Need

EVENT_NAME = RegexValidator(
    r"^[A-Za-z0-9_.:-]{1,100}$", "An event name: letters, digits, _ . : - (e.g. product_viewed)."
)
PROPERTY_NAME = r"^[A-Za-z0-9_]{1,64}$"
FILTER_OPERATORS = ("equals", "not_equals", "contains")
MAX_HOURS = 24 * 366


def _clean_where(raw: Any) -> list[dict[str, str]]:
    import re

    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        raise ValidationError(
            'A list of filters, e.g. [{"property": "category", '
            '"operator": "equals", "value": "kitchen"}].'
        )
    cleaned: list[dict[str, str]] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValidationError(
                f"where[{index}]: a filter object, e.g. "
                '{"property": "category", "operator": "equals", "value": "x"}.'
            )
        prop = item.get("property")
        if not isinstance(prop, str) or not re.match(PROPERTY_NAME, prop):
            raise ValidationError(
                f"where[{index}].property: letters, digits and _ (e.g. category)."
            )
        operator = item.get("operator", "equals")
        if operator not in FILTER_OPERATORS:
            raise ValidationError(
                f"where[{index}].operator: one of {', '.join(FILTER_OPERATORS)}, not {operator!r}."
            )
        value = item.get("value")
        if not isinstance(value, str | int | float) or isinstance(value, bool) or value == "":
            raise ValidationError(f"where[{index}].value: a text or number to compare with.")
        extra = sorted(set(item) - {"property", "operator", "value"})
        if extra:
            raise ValidationError(f"where[{index}]: unknown key(s) {', '.join(extra)}.")
        cleaned.append({"property": prop, "operator": operator, "value": str(value)})
    return cleaned


class WhereField(forms.JSONField):
    def clean(self, value: Any) -> Any:
        return _clean_where(super().clean(value))


def _need(options: dict[str, Any]) -> EventCountNeed:
    where = tuple(
        EventFilter(property=f["property"], operator=f["operator"], value=f["value"])
        for f in options.get("where", [])
    )
    return EventCountNeed(event=options["event"], hours=int(options["hours"]), where=where)


class EventCountForm(forms.Form):
    event = forms.CharField(
        max_length=100, validators=[EVENT_NAME], help_text="e.g. product_viewed"
    )
    count = forms.IntegerField(
        min_value=1, max_value=100_000, help_text="At least this many, e.g. 3"
    )
    hours = forms.IntegerField(min_value=1, max_value=MAX_HOURS, help_text="Window, e.g. 24")
    where = WhereField(
        required=False,
        help_text='Property filters, e.g. [{"property": "category", "operator": "equals", '
        '"value": "kitchen"}]',
    )


@conditions.register
class EventCount(ConditionType):
    id = "event_count"
    label = "{event} at least {count} times in {hours} hours"
    form = EventCountForm
    time_dependent = True  # the window slides

    def facts_needed(self, options: dict[str, Any]) -> list[Need]:
        return [_need(options)]

    def compile(self, options: dict[str, Any]) -> Expression:
        return {"$gte": {_need(options).key: int(options["count"])}}

    def candidates(self, options: dict[str, Any], *, now: dt.datetime) -> Q | None:
        since = now - dt.timedelta(hours=int(options["hours"]))
        recent = Event.objects.filter(
            type=options["event"], occurred_at__gte=since, occurred_at__lte=now
        ).values("contact_id")
        return Q(id__in=recent)


class EventAbsentForm(forms.Form):
    event = forms.CharField(
        max_length=100, validators=[EVENT_NAME], help_text="e.g. order_completed"
    )
    hours = forms.IntegerField(min_value=1, max_value=MAX_HOURS, help_text="Window, e.g. 24")
    where = WhereField(required=False, help_text="Property filters, as for event_count.")


@conditions.register
class EventAbsent(ConditionType):
    id = "event_absent"
    label = "no {event} in {hours} hours"
    form = EventAbsentForm
    time_dependent = True

    def facts_needed(self, options: dict[str, Any]) -> list[Need]:
        return [_need(options)]

    def compile(self, options: dict[str, Any]) -> Expression:
        return {_need(options).key: 0}
