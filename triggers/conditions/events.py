"""Behaviour in a window: "product_viewed at least 3 times in 24 hours", with property
filters, and its absence: "no order_completed in 24 hours"."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db.models import Q

from core.conditions import WhereDialect, Window, where_clean, where_load
from crm.models import Event
from triggers.conditions.base import ConditionType, Expression, conditions
from triggers.facts import EventCountNeed, Need
from triggers.types import EventAbsentOptions, EventCountOptions

EVENT_NAME = RegexValidator(
    r"^[A-Za-z0-9_.:-]{1,100}$", "An event name: letters, digits, _ . : - (e.g. product_viewed)."
)
MAX_HOURS = 24 * 366
# Values are kept as text: a rule stored with "value": 3 has always compared the text "3".
WHERE = WhereDialect(
    operators=("equals", "not_equals", "contains"),
    key_re=re.compile(r"[A-Za-z0-9_]{1,64}"),
    key_hint="letters, digits and _, e.g. category",
    default_operator="equals",
    text_values=True,
)


class WhereField(forms.JSONField):
    def clean(self, value: Any) -> Any:
        filters, errors = where_clean(super().clean(value), dialect=WHERE)
        if errors:
            raise ValidationError(
                [message if path == "where" else f"{path}: {message}" for path, message in errors]
            )
        return [item.as_data() for item in filters]


def _need(options: EventCountOptions | EventAbsentOptions) -> EventCountNeed:
    where = where_load(options.get("where", []))
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
class EventCount(ConditionType[EventCountOptions]):
    id = "event_count"
    label = "{event} at least {count} times in {hours} hours"
    form = EventCountForm
    time_dependent = True  # the window slides

    def facts_needed(self, options: EventCountOptions) -> list[Need]:
        return [_need(options)]

    def compile(self, options: EventCountOptions) -> Expression:
        return {"$gte": {_need(options).key: int(options["count"])}}

    def candidates(self, options: EventCountOptions, *, now: dt.datetime) -> Q | None:
        since = Window.from_options(options).start(now)
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
class EventAbsent(ConditionType[EventAbsentOptions]):
    id = "event_absent"
    label = "no {event} in {hours} hours"
    form = EventAbsentForm
    time_dependent = True

    def facts_needed(self, options: EventAbsentOptions) -> list[Need]:
        return [_need(options)]

    def compile(self, options: EventAbsentOptions) -> Expression:
        return {_need(options).key: 0}
