"""What we know about the contact: attributes, consent, lifecycle stage, RFM group and the
predicted probability of a purchase."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django import forms
from django.db.models import Q

from core.conditions import OperatorField, operator_choices, operator_normalise
from core.conditions.values import PRESENCE
from crm.models import MARKETING, Channel
from crm.selectors import contacts_with_consent
from segments.models import LifecycleStage, RFMGroup
from triggers.conditions.base import ConditionType, Expression, conditions
from triggers.facts import CONTACT_FIELDS, AttributeNeed, BaseNeed, ConsentNeed, Need
from triggers.types import (
    AttributeOptions,
    ConsentOptions,
    LifecycleOptions,
    PredictionOptions,
    RFMOptions,
)

ATTRIBUTE_OPERATORS = operator_choices(
    "equals", "not_equals", "gt", "gte", "lt", "lte", "contains", "is_set", "is_not_set"
)
NUMERIC = {"gt": "$gt", "gte": "$gte", "lt": "$lt", "lte": "$lte"}


class AttributeForm(forms.Form):
    attribute = forms.RegexField(
        regex=r"^[A-Za-z0-9_]{1,64}$",
        help_text=f"A custom attribute or one of {', '.join(CONTACT_FIELDS)}, e.g. plan",
    )
    operator = OperatorField(choices=ATTRIBUTE_OPERATORS, help_text="e.g. equals")
    value = forms.CharField(required=False, max_length=500, help_text="e.g. pro, or 100")

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        operator, value = data.get("operator"), data.get("value", "")
        if operator in NUMERIC:
            try:
                data["value"] = float(value)
            except (TypeError, ValueError):
                self.add_error("value", f"a number is needed to compare with {operator}.")
        elif operator in PRESENCE:
            data["value"] = ""
        elif not value:
            self.add_error("value", "a value to compare with is needed.")
        elif operator == "contains" and not CONTAINS_SAFE.match(value):
            self.add_error("value", "contains accepts letters, digits, spaces and _ @ . , : / -")
        return data


CONTAINS_SAFE = re.compile(r"^[A-Za-z0-9 _@.,:/-]{1,200}$")


def _contains_pattern(text: str) -> str:
    # durable_rules' $mt matches a whole value against its own regex dialect, which has no
    # backslash escapes (measured on 2.0.28); "[.]" is how a literal dot is written there.
    return ".*" + text.replace(".", "[.]") + ".*"


@conditions.register
class AttributeCompare(ConditionType[AttributeOptions]):
    id = "attribute"
    label = "attribute {attribute} {operator} {value}"
    form = AttributeForm

    def facts_needed(self, options: AttributeOptions) -> list[Need]:
        return [AttributeNeed(options["attribute"])]

    def compile(self, options: AttributeOptions) -> Expression:
        need = AttributeNeed(options["attribute"])
        operator = operator_normalise(options["operator"])
        if operator in NUMERIC:
            return {NUMERIC[operator]: {need.number_key: float(options["value"])}}
        if operator == "is_set":
            return {"$ex": {need.key: 1}}
        if operator == "is_not_set":
            return {"$nex": {need.key: 1}}
        if operator == "contains":
            return {"$mt": {need.key: _contains_pattern(str(options["value"]))}}
        if operator == "not_equals":
            return {"$neq": {need.key: str(options["value"])}}
        return {need.key: str(options["value"])}


class ConsentForm(forms.Form):
    channel = forms.ChoiceField(choices=Channel.choices, help_text="email or sms")
    purpose = forms.SlugField(max_length=64, initial=MARKETING, help_text="e.g. marketing")


@conditions.register
class ConsentPresent(ConditionType[ConsentOptions]):
    id = "consent"
    label = "has granted {channel} consent for {purpose}"
    form = ConsentForm

    def clean_options(self, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list[str]]]:
        return super().clean_options({"purpose": MARKETING, **options})

    def facts_needed(self, options: ConsentOptions) -> list[Need]:
        return [ConsentNeed(options["channel"], options["purpose"])]

    def compile(self, options: ConsentOptions) -> Expression:
        return {ConsentNeed(options["channel"], options["purpose"]).key: True}

    def candidates(self, options: ConsentOptions, *, now: dt.datetime) -> Q | None:
        granted = contacts_with_consent(channel=options["channel"], purpose=options["purpose"])
        return Q(id__in=granted.values("id"))


def _one_of(key: str, values: list[str]) -> Expression:
    if len(values) == 1:
        return {key: values[0]}
    return {"$or": [{key: value} for value in values]}


class LifecycleForm(forms.Form):
    stages = forms.MultipleChoiceField(choices=LifecycleStage.choices, help_text='e.g. ["dormant"]')


@conditions.register
class LifecycleIs(ConditionType[LifecycleOptions]):
    id = "lifecycle"
    label = "lifecycle stage is {stages}"
    form = LifecycleForm

    def facts_needed(self, options: LifecycleOptions) -> list[Need]:
        return [BaseNeed("lifecycle")]

    def compile(self, options: LifecycleOptions) -> Expression:
        return _one_of("lifecycle", list(options["stages"]))

    def candidates(self, options: LifecycleOptions, *, now: dt.datetime) -> Q | None:
        return Q(lifecycle__stage__in=options["stages"])


class RFMForm(forms.Form):
    groups = forms.MultipleChoiceField(choices=RFMGroup.choices, help_text='e.g. ["at_risk"]')


@conditions.register
class RFMGroupIs(ConditionType[RFMOptions]):
    id = "rfm_group"
    label = "RFM group is {groups}"
    form = RFMForm

    def facts_needed(self, options: RFMOptions) -> list[Need]:
        return [BaseNeed("rfm_group")]

    def compile(self, options: RFMOptions) -> Expression:
        return _one_of("rfm_group", list(options["groups"]))

    def candidates(self, options: RFMOptions, *, now: dt.datetime) -> Q | None:
        return Q(rfm__group__in=options["groups"])


class PredictionForm(forms.Form):
    operator = forms.ChoiceField(choices=(("at_least", "at least"), ("below", "below")))
    probability = forms.FloatField(
        min_value=0, max_value=1, help_text="0 to 1, e.g. 0.5 for a 50% chance"
    )


@conditions.register
class PurchaseProbability(ConditionType[PredictionOptions]):
    """P(at least one purchase in the prediction horizon) = 1 - exp(-expected purchases),
    from the BG/NBD prediction (segments.ContactPrediction); contacts never scored don't
    match either way."""

    id = "purchase_probability"
    label = "predicted purchase probability {operator} {probability}"
    form = PredictionForm

    def facts_needed(self, options: PredictionOptions) -> list[Need]:
        return [BaseNeed("p_purchase")]

    def compile(self, options: PredictionOptions) -> Expression:
        op = "$gte" if options["operator"] == "at_least" else "$lt"
        return {op: {"p_purchase": float(options["probability"])}}

    def candidates(self, options: PredictionOptions, *, now: dt.datetime) -> Q | None:
        return Q(prediction__isnull=False)
