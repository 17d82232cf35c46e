"""Conditions on who the contact is: fields and custom attributes, consent, membership of
another segment, time zone and country."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from core.conditions import OperatorField, value_test_check
from crm.models import MARKETING, Channel
from crm.normalise import normalise_country, validate_timezone
from segments.compiler.forms.base import (
    ATTRIBUTE_PREFIX,
    CONTACT_FIELDS,
    KEY_RE,
    VALUE_OPERATORS,
    ConditionForm,
    value_text,
)
from segments.compiler.forms.fields import (
    MESSAGES,
    JsonValueField,
    ListField,
    SlugTextField,
    TextField,
    choice_field,
)
from segments.compiler.types import (
    AttributeCondition,
    ConsentCondition,
    CountryCondition,
    SegmentCondition,
    TimezoneCondition,
)


class AttributeForm(ConditionForm):
    condition_class = AttributeCondition
    label = "contact {field} {operator} {value}"

    field = TextField(
        label="field",
        max_length=80,
        error_messages=MESSAGES,
        help_text="A contact field (country, locale, email, ...) or attributes.<key>, e.g. "
        "attributes.plan",
    )
    operator = choice_field(VALUE_OPERATORS, label="operator", field_class=OperatorField)
    value = JsonValueField(label="value")

    def clean_field(self) -> str:
        name = str(self.cleaned_data["field"]).strip()
        if name in CONTACT_FIELDS:
            return name
        if name.startswith(ATTRIBUTE_PREFIX) and KEY_RE.fullmatch(name[len(ATTRIBUTE_PREFIX) :]):
            return name
        raise ValidationError(
            f"{name!r} is neither a contact field ({', '.join(CONTACT_FIELDS)}) nor a custom "
            "attribute written attributes.<key>, e.g. attributes.plan"
        )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        field, operator = data.get("field"), data.get("operator")
        if field is None or operator is None:
            return data
        test, problem = value_test_check(operator, data.get("value"))
        if problem:
            self.add_error("value", problem)
        elif operator in ("gt", "lt") and not field.startswith(ATTRIBUTE_PREFIX):
            self.add_error("operator", f"{operator} compares numbers: use it on a custom attribute")
        data["test"] = test
        return data

    def to_condition(self) -> AttributeCondition:
        return AttributeCondition(field=self.cleaned_data["field"], test=self.cleaned_data["test"])

    @classmethod
    def describe(cls, condition: AttributeCondition) -> str:
        return f"{condition.field} {value_text(condition.test)}"


class ConsentForm(ConditionForm):
    condition_class = ConsentCondition
    label = "{state} consent for {channel} / {purpose}"

    state = choice_field((("has", "has"), ("lacks", "lacks")), label="state")
    channel = choice_field(Channel.choices, label="channel")
    purpose = TextField(
        label="purpose",
        max_length=64,
        required=False,
        error_messages=MESSAGES,
        help_text='Default "marketing"; or a topic such as newsletter.',
    )

    def to_condition(self) -> ConsentCondition:
        data = self.cleaned_data
        return ConsentCondition(
            channel=data["channel"],
            purpose=data["purpose"].strip() or MARKETING,
            state=data["state"],
        )

    @classmethod
    def describe(cls, condition: ConsentCondition) -> str:
        return f"{condition.state} {condition.channel} consent for {condition.purpose}"


class SegmentMemberForm(ConditionForm):
    condition_class = SegmentCondition
    label = "is {member} of segment {segment}"

    segment = SlugTextField(
        label="segment (slug)", error_messages={**MESSAGES, "invalid": "must be a segment's slug"}
    )
    member = forms.NullBooleanField(
        label="member", required=False, help_text="Yes: a current member; No: not a member."
    )

    def to_condition(self) -> SegmentCondition:
        member = self.cleaned_data.get("member")
        return SegmentCondition(segment=self.cleaned_data["segment"], member=member is not False)

    @classmethod
    def describe(cls, condition: SegmentCondition) -> str:
        return f"{'is' if condition.member else 'is not'} a member of segment {condition.segment}"


IN_OPERATORS = (("in", "is one of"), ("not_in", "is none of"))


class TimezoneForm(ConditionForm):
    condition_class = TimezoneCondition
    label = "time zone {operator} {zones}"

    operator = choice_field(IN_OPERATORS, label="operator", required=False)
    zones = ListField(
        label="time zones", item=validate_timezone, help_text="e.g. Europe/Paris, Europe/Berlin"
    )

    def to_condition(self) -> TimezoneCondition:
        return TimezoneCondition(
            operator=self.cleaned_data["operator"] or "in", zones=tuple(self.cleaned_data["zones"])
        )

    @classmethod
    def describe(cls, condition: TimezoneCondition) -> str:
        return f"time zone {dict(IN_OPERATORS)[condition.operator]} {', '.join(condition.zones)}"


class CountryForm(ConditionForm):
    condition_class = CountryCondition
    label = "country {operator} {countries}"

    operator = choice_field(IN_OPERATORS, label="operator", required=False)
    countries = ListField(
        label="countries", item=normalise_country, help_text="ISO codes, e.g. FR, DE"
    )

    def to_condition(self) -> CountryCondition:
        return CountryCondition(
            operator=self.cleaned_data["operator"] or "in",
            countries=tuple(self.cleaned_data["countries"]),
        )

    @classmethod
    def describe(cls, condition: CountryCondition) -> str:
        return f"country {dict(IN_OPERATORS)[condition.operator]} {', '.join(condition.countries)}"
