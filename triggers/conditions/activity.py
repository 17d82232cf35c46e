"""Time since activity: dormancy (no event of any type for D days, from
Contact.last_activity_at: creating or editing a contact is not activity) and days since the
last purchase."""

from __future__ import annotations

import datetime as dt

from django import forms
from django.db.models import Q

from core.conditions import Window
from triggers.conditions.base import ConditionType, Expression, conditions
from triggers.facts import BaseNeed, Need
from triggers.types import DormancyOptions, PurchaseDaysOptions

COMPARISONS = (("more_than", "more than"), ("less_than", "less than"))


class DormancyForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=3650, help_text="e.g. 60")


@conditions.register
class Dormancy(ConditionType[DormancyOptions]):
    id = "dormancy"
    label = "no activity of any kind for {days} days"
    form = DormancyForm
    time_dependent = True
    candidates_read_rollups = True

    def facts_needed(self, options: DormancyOptions) -> list[Need]:
        return [BaseNeed("inactive_days")]

    def compile(self, options: DormancyOptions) -> Expression:
        return {"$gte": {"inactive_days": int(options["days"])}}

    def candidates(self, options: DormancyOptions, *, now: dt.datetime) -> Q | None:
        return Q(last_activity_at__lte=Window.from_options(options).start(now))


class PurchaseDaysForm(forms.Form):
    operator = forms.ChoiceField(choices=COMPARISONS, help_text="more_than or less_than")
    days = forms.IntegerField(min_value=0, max_value=3650, help_text="e.g. 30")


@conditions.register
class DaysSincePurchase(ConditionType[PurchaseDaysOptions]):
    id = "days_since_purchase"
    label = "last purchase {operator} {days} days ago"
    form = PurchaseDaysForm
    time_dependent = True
    candidates_read_rollups = True

    def facts_needed(self, options: PurchaseDaysOptions) -> list[Need]:
        return [BaseNeed("purchase_days")]

    def compile(self, options: PurchaseDaysOptions) -> Expression:
        op = "$gt" if options["operator"] == "more_than" else "$lt"
        return {op: {"purchase_days": int(options["days"])}}

    def candidates(self, options: PurchaseDaysOptions, *, now: dt.datetime) -> Q | None:
        edge = Window.from_options(options).start(now)
        if options["operator"] == "more_than":
            return Q(last_purchase_at__lt=edge)
        return Q(last_purchase_at__gt=edge)
