"""Conditions on what segments.analytics computed: RFM, lifecycle stage, cluster and
predictions. Groups and stages are the models' own choices."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from segments.compiler.forms.base import ConditionForm
from segments.compiler.forms.fields import MESSAGES, ListField, StrictIntegerField, choice_field
from segments.compiler.types import (
    ClusterCondition,
    LifecycleCondition,
    PredictionCondition,
    RfmCondition,
)
from segments.models.analytics import LifecycleStage, RFMGroup

LIFECYCLE_STAGES = tuple(LifecycleStage.values)
RFM_GROUPS = tuple((value, str(label)) for value, label in RFMGroup.choices)


class RfmForm(ConditionForm):
    condition_class = RfmCondition
    label = "RFM group is {group}, or RFM {score} score {operator} {value}"

    group = choice_field((("", "---------"), *RFM_GROUPS), label="named group", required=False)
    score = choice_field(
        (
            ("", "---------"),
            ("recency", "recency"),
            ("frequency", "frequency"),
            ("monetary", "monetary"),
        ),
        label="or score",
        required=False,
    )
    operator = choice_field(
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
            **MESSAGES,
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
            **MESSAGES,
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
            **MESSAGES,
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

    metric = choice_field(
        (
            ("p_alive", "probability still a customer (0 to 1)"),
            ("expected_purchases", "expected purchases"),
        ),
        label="prediction",
    )
    operator = choice_field((("gt", "greater than"), ("lt", "less than")), label="operator")
    value = forms.FloatField(
        label="value",
        min_value=0,
        error_messages={
            **MESSAGES,
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
