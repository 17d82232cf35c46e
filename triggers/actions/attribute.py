"""Set a custom attribute (a Contact.attributes key) on the contact."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

from django import forms
from django.db import transaction
from django.utils import timezone

from crm.models import Contact
from triggers.actions.base import ActionError, ActionType, actions

if TYPE_CHECKING:
    from triggers.models import TriggerFiring

ValueType = Literal["text", "number", "boolean", "now"]
AttributeValue = str | int | float | bool

VALUE_TYPES: tuple[tuple[ValueType, str], ...] = (
    ("text", "text"),
    ("number", "number"),
    ("boolean", "true / false"),
    ("now", "the time of the firing (ISO 8601)"),
)


class SetAttributeOptions(TypedDict):
    """e.g. {"attribute": "winback_sent", "value": true, "value_type": "boolean"}"""

    attribute: str
    value: NotRequired[AttributeValue]  # left out when blank
    value_type: NotRequired[ValueType]  # the form always sets it; "text" when left out


class SetAttributeResult(TypedDict):
    attribute: str
    value: AttributeValue  # as written: a "now" value is the firing's time
    previous: object  # what the attribute held before, None when it was unset


class SetAttributeForm(forms.Form):
    attribute = forms.RegexField(regex=r"^[A-Za-z0-9_]{1,64}$", help_text="e.g. winback_sent")
    value = forms.CharField(required=False, max_length=500, help_text="e.g. yes, 3, true")
    value_type = forms.ChoiceField(choices=VALUE_TYPES, initial="text", required=False)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind, raw = data.get("value_type") or "text", data.get("value", "")
        data["value_type"] = kind
        if kind == "number":
            try:
                number = float(raw)
            except (TypeError, ValueError):
                self.add_error("value", "a number is needed for value_type number.")
            else:
                data["value"] = int(number) if number.is_integer() else number
        elif kind == "boolean":
            if str(raw).lower() not in ("true", "false"):
                self.add_error("value", "true or false is needed for value_type boolean.")
            else:
                data["value"] = str(raw).lower() == "true"
        return data


@actions.register
class SetAttribute(ActionType[SetAttributeOptions, SetAttributeResult]):
    id = "set_attribute"
    database_only = True
    label = "set attribute {attribute} to {value}"
    form = SetAttributeForm

    def options(self, stored: Mapping[str, Any]) -> SetAttributeOptions:
        options = SetAttributeOptions(attribute=stored["attribute"])
        if "value" in stored:
            options["value"] = stored["value"]
        if "value_type" in stored:
            options["value_type"] = stored["value_type"]
        return options

    def run(
        self, options: SetAttributeOptions, *, firing: TriggerFiring, contact_id: int
    ) -> SetAttributeResult:
        value = options.get("value", "")
        if options.get("value_type") == "now":
            value = (firing.fired_at or timezone.now()).isoformat()
        with transaction.atomic():
            contact = Contact.objects.select_for_update().filter(pk=contact_id).first()
            if contact is None:
                raise ActionError(f"contact {contact_id} no longer exists")
            attributes = dict(contact.attributes or {})
            previous = attributes.get(options["attribute"])
            attributes[options["attribute"]] = value
            contact.attributes = attributes
            contact.save(update_fields=["attributes", "updated_at"])
        return {"attribute": options["attribute"], "value": value, "previous": previous}
