"""The contact's own clock: a local time-of-day window and days of the week, in the
contact's IANA zone (UTC when it is unknown)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django import forms

from triggers.conditions.base import ConditionType, Expression, conditions
from triggers.facts import BaseNeed, Need
from triggers.types import TimeWindowOptions, WeekdayOptions

WEEKDAYS = (
    ("0", "Monday"),
    ("1", "Tuesday"),
    ("2", "Wednesday"),
    ("3", "Thursday"),
    ("4", "Friday"),
    ("5", "Saturday"),
    ("6", "Sunday"),
)


def _minutes(value: dt.time) -> int:
    return value.hour * 60 + value.minute


class TimeWindowForm(forms.Form):
    start = forms.TimeField(help_text="Local time, e.g. 09:00")
    end = forms.TimeField(help_text="Local time, exclusive, e.g. 20:00 (22:00 to 06:00 wraps)")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("start") is not None and data.get("start") == data.get("end"):
            self.add_error("end", "the window is empty: start and end are the same time.")
        for key in ("start", "end"):
            if isinstance(data.get(key), dt.time):
                data[key] = data[key].strftime("%H:%M")
        return data


@conditions.register
class LocalTimeWindow(ConditionType[TimeWindowOptions]):
    id = "local_time"
    label = "local time between {start} and {end}"
    form = TimeWindowForm
    time_dependent = True

    def facts_needed(self, options: TimeWindowOptions) -> list[Need]:
        return [BaseNeed("local_minutes")]

    def compile(self, options: TimeWindowOptions) -> Expression:
        start = _minutes(dt.time.fromisoformat(options["start"]))
        end = _minutes(dt.time.fromisoformat(options["end"]))
        after, before = {"$gte": {"local_minutes": start}}, {"$lt": {"local_minutes": end}}
        if start < end:
            return {"$and": [after, before]}
        return {"$or": [after, before]}  # wraps past midnight


class WeekdayForm(forms.Form):
    days = forms.TypedMultipleChoiceField(
        choices=WEEKDAYS, coerce=int, help_text="0 is Monday, e.g. [5, 6] for weekends"
    )


@conditions.register
class DayOfWeek(ConditionType[WeekdayOptions]):
    id = "day_of_week"
    label = "local day of the week is one of {days} (0 = Monday)"
    form = WeekdayForm
    time_dependent = True

    def facts_needed(self, options: WeekdayOptions) -> list[Need]:
        return [BaseNeed("local_weekday")]

    def compile(self, options: WeekdayOptions) -> Expression:
        days = sorted({int(d) for d in options["days"]})
        if len(days) == 1:
            return {"local_weekday": days[0]}
        return {"$or": [{"local_weekday": d} for d in days]}
