"""One Django form per condition type: the single place a condition's options are checked.

The same forms validate a stored definition (Segment.clean, through segments.compiler.tree),
render the admin's segment builder, and turn a leaf's JSON into its typed dataclass. A form's
errors read as short phrases ("must be a positive integer") because they are shown after the
path of the option at fault ("conditions[2].days: must be a positive integer").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, cast

from django import forms
from django.core.exceptions import ValidationError

from core.conditions import (
    JsonScalar,
    PropertyFilter,
    ValueTest,
    WhereDialect,
    operator_choices,
    value_test_check,
    value_test_describe,
    where_clean,
)
from crm.models import MARKETING, Channel
from crm.normalise import normalise_country, validate_timezone
from segments.compiler.types import (
    AttributeCondition,
    BehaviourCondition,
    ClusterCondition,
    Condition,
    ConsentCondition,
    CountryCondition,
    LifecycleCondition,
    PredictionCondition,
    RecencyCondition,
    RfmCondition,
    SegmentCondition,
    TimezoneCondition,
)
from segments.models.analytics import LifecycleStage, RFMGroup

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
MAX_DAYS = 3650
LIFECYCLE_STAGES = tuple(LifecycleStage.values)
RFM_GROUPS = tuple((value, str(label)) for value, label in RFMGroup.choices)

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

_MESSAGES = {
    "required": "is required",
    "invalid": "is not valid",
    "invalid_choice": "%(value)r is not one of the choices",
    "max_length": "must be at most %(limit_value)d characters",
}


def _choice(choices: Sequence[tuple[str, str]], *, label: str, **kwargs: Any) -> forms.ChoiceField:
    messages = {
        **_MESSAGES,
        "invalid_choice": f"%(value)r is not one of: {', '.join(c for c, _ in choices)}",
    }
    return forms.ChoiceField(choices=choices, label=label, error_messages=messages, **kwargs)


def _positive_int(
    *, label: str, maximum: int = MAX_DAYS, minimum: int = 1, **kwargs: Any
) -> forms.IntegerField:
    word = "a positive integer" if minimum == 1 else f"an integer of at least {minimum}"
    return forms.IntegerField(
        label=label,
        min_value=minimum,
        max_value=maximum,
        error_messages={
            **_MESSAGES,
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
        return cast(int | None, super().to_python(value))


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
        kwargs.setdefault("error_messages", _MESSAGES)
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
            import json

            return json.dumps(list(value))
        return value


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


def _value_text(test: ValueTest) -> str:
    return value_test_describe(test, labels=OPERATOR_LABELS)


class AttributeForm(ConditionForm):
    condition_class = AttributeCondition
    label = "contact {field} {operator} {value}"

    field = TextField(
        label="field",
        max_length=80,
        error_messages=_MESSAGES,
        help_text="A contact field (country, locale, email, ...) or attributes.<key>, e.g. "
        "attributes.plan",
    )
    operator = _choice(VALUE_OPERATORS, label="operator")
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
        return f"{condition.field} {_value_text(condition.test)}"


class ConsentForm(ConditionForm):
    condition_class = ConsentCondition
    label = "{state} consent for {channel} / {purpose}"

    state = _choice((("has", "has"), ("lacks", "lacks")), label="state")
    channel = _choice(Channel.choices, label="channel")
    purpose = TextField(
        label="purpose",
        max_length=64,
        required=False,
        error_messages=_MESSAGES,
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
        label="event", max_length=100, error_messages=_MESSAGES, help_text="e.g. product_viewed"
    )
    operator = _choice(BEHAVIOUR_OPERATORS, label="how often")
    count = StrictIntegerField(
        label="times",
        required=False,
        min_value=0,
        max_value=1_000_000,
        error_messages={
            **_MESSAGES,
            "invalid": "must be a whole number",
            "min_value": "must not be negative",
        },
    )
    days = _positive_int(label="in the last (days)")
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
                f"{item.property} {_value_text(item.test)}" for item in condition.where
            )
        return text


class RecencyForm(ConditionForm):
    condition_class = RecencyCondition
    label = "days since last {of} {operator} {days}"

    of = _choice((("activity", "activity"), ("purchase", "purchase")), label="since last")
    operator = _choice(
        (
            ("more_than", "more than"),
            ("at_least", "at least"),
            ("less_than", "less than"),
            ("at_most", "at most"),
        ),
        label="is",
    )
    days = _positive_int(label="days")
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


class RfmForm(ConditionForm):
    condition_class = RfmCondition
    label = "RFM group is {group}, or RFM {score} score {operator} {value}"

    group = _choice((("", "---------"), *RFM_GROUPS), label="named group", required=False)
    score = _choice(
        (
            ("", "---------"),
            ("recency", "recency"),
            ("frequency", "frequency"),
            ("monetary", "monetary"),
        ),
        label="or score",
        required=False,
    )
    operator = _choice(
        (("", "---------"), ("equals", "equals"), ("gte", "at least"), ("lte", "at most")),
        label="operator",
        required=False,
    )
    value = StrictIntegerField(
        label="value (1 to 5)",
        required=False,
        min_value=1,
        max_value=5,
        error_messages={
            **_MESSAGES,
            "invalid": "must be a score from 1 to 5",
            "min_value": "must be a score from 1 to 5",
            "max_value": "must be a score from 1 to 5",
        },
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        group = data.get("group")
        parts = [
            name for name in ("score", "operator", "value") if data.get(name) not in (None, "")
        ]
        if group and parts:
            self.add_error(None, "give either a named group or a score comparison, not both")
        elif not group and not self.errors:
            for name in ("score", "operator", "value"):
                if name not in parts:
                    self.add_error(name, "is required when no named group is given")
        return data

    def to_condition(self) -> RfmCondition:
        data = self.cleaned_data
        if data.get("group"):
            return RfmCondition(group=data["group"])
        return RfmCondition(score=data["score"], operator=data["operator"], value=data["value"])

    @classmethod
    def describe(cls, condition: RfmCondition) -> str:
        if condition.group:
            return f"RFM group is {dict(RFM_GROUPS).get(condition.group, condition.group)}"
        word = {"equals": "=", "gte": "≥", "lte": "≤"}.get(condition.operator or "", "?")
        return f"RFM {condition.score} score {word} {condition.value}"


def _stage(text: str) -> str:
    if text not in LIFECYCLE_STAGES:
        raise ValidationError(f"{text!r} is not a stage ({', '.join(LIFECYCLE_STAGES)})")
    return text


class LifecycleForm(ConditionForm):
    condition_class = LifecycleCondition
    label = "lifecycle stage is one of {stages}"

    stages = ListField(label="stages", item=_stage, help_text=", ".join(LIFECYCLE_STAGES))

    def to_condition(self) -> LifecycleCondition:
        return LifecycleCondition(stages=tuple(self.cleaned_data["stages"]))

    @classmethod
    def describe(cls, condition: LifecycleCondition) -> str:
        return "lifecycle stage is " + " or ".join(condition.stages)


class ClusterForm(ConditionForm):
    condition_class = ClusterCondition
    label = "in cluster {cluster} of the latest clustering (or of run {run})"

    cluster = StrictIntegerField(
        label="cluster number",
        min_value=0,
        error_messages={
            **_MESSAGES,
            "invalid": "must be a whole number",
            "min_value": "must not be negative",
        },
    )
    run = StrictIntegerField(
        label="clustering run id",
        required=False,
        min_value=1,
        help_text="Leave empty for the latest run.",
        error_messages={
            **_MESSAGES,
            "invalid": "must be a run id",
            "min_value": "must be a run id",
        },
    )

    def to_condition(self) -> ClusterCondition:
        return ClusterCondition(
            cluster=self.cleaned_data["cluster"], run=self.cleaned_data.get("run")
        )

    @classmethod
    def describe(cls, condition: ClusterCondition) -> str:
        run = f"run {condition.run}" if condition.run else "the latest clustering"
        return f"in cluster {condition.cluster} of {run}"


class PredictionForm(ConditionForm):
    condition_class = PredictionCondition
    label = "predicted {metric} {operator} {value}"

    metric = _choice(
        (
            ("p_alive", "probability still a customer (0 to 1)"),
            ("expected_purchases", "expected purchases"),
        ),
        label="prediction",
    )
    operator = _choice((("gt", "greater than"), ("lt", "less than")), label="operator")
    value = forms.FloatField(
        label="value",
        min_value=0,
        error_messages={
            **_MESSAGES,
            "invalid": "must be a number",
            "min_value": "must not be negative",
        },
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("metric") == "p_alive" and (data.get("value") or 0) > 1:
            self.add_error("value", "is a probability: it must be between 0 and 1")
        return data

    def to_condition(self) -> PredictionCondition:
        data = self.cleaned_data
        return PredictionCondition(
            metric=data["metric"], operator=data["operator"], value=data["value"]
        )

    @classmethod
    def describe(cls, condition: PredictionCondition) -> str:
        word = "greater than" if condition.operator == "gt" else "less than"
        return f"predicted {condition.metric.replace('_', ' ')} {word} {condition.value:g}"


class SegmentMemberForm(ConditionForm):
    condition_class = SegmentCondition
    label = "is {member} of segment {segment}"

    segment = SlugTextField(
        label="segment (slug)", error_messages={**_MESSAGES, "invalid": "must be a segment's slug"}
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

    operator = _choice(IN_OPERATORS, label="operator", required=False)
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

    operator = _choice(IN_OPERATORS, label="operator", required=False)
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


# The registry the parser, the compiler and the admin's builder walk: type -> form.
CONDITION_FORMS: dict[str, type[ConditionForm]] = {
    form.condition_class.type: form
    for form in (
        AttributeForm,
        ConsentForm,
        BehaviourForm,
        RecencyForm,
        RfmForm,
        LifecycleForm,
        ClusterForm,
        PredictionForm,
        SegmentMemberForm,
        TimezoneForm,
        CountryForm,
    )
}
CONDITION_LABELS: dict[str, str] = {
    "attribute": "Contact field or custom attribute",
    "consent": "Consent",
    "behaviour": "Did an event N times in the last D days",
    "recency": "Days since last activity or purchase",
    "rfm": "RFM score or group",
    "lifecycle": "Lifecycle stage",
    "cluster": "Cluster",
    "prediction": "Predicted purchases",
    "segment": "Member of another segment",
    "timezone": "Time zone",
    "country": "Country",
}
