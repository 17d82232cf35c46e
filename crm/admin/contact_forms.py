"""The contact edit form: staff input normalised like every other way in."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from crm.models import Contact, ContactAlias
from crm.normalise import (
    email_key,
    normalise_country,
    normalise_email,
    normalise_locale,
    normalise_name,
    normalise_phone,
    validate_timezone,
)


class ContactForm(forms.ModelForm[Contact]):
    """Staff edits go through the same normalisation as every other way in."""

    class Meta:
        model = Contact
        fields = (
            "first_name",
            "last_name",
            "email",
            "phone",
            "external_id",
            "locale",
            "timezone",
            "country",
            "attributes",
        )

    def _taken(self, **lookup: Any) -> bool:
        return Contact.objects.filter(**lookup).exclude(pk=self.instance.pk).exists()

    def clean_email(self) -> str | None:
        raw = self.cleaned_data.get("email")
        if not raw:
            return None
        value = normalise_email(raw)
        key = email_key(value)
        if (
            self._taken(email_key=key)
            or ContactAlias.objects.filter(kind=ContactAlias.Kind.EMAIL, value=key)
            .exclude(contact_id=self.instance.pk)
            .exists()
        ):
            raise ValidationError(_("Another contact already has this email address."))
        return value

    def clean_phone(self) -> str | None:
        raw = self.cleaned_data.get("phone")
        if not raw:
            return None
        value = normalise_phone(raw)
        if self._taken(phone=value):
            raise ValidationError(_("Another contact already has this phone number."))
        return value

    def clean_external_id(self) -> str | None:
        value = (self.cleaned_data.get("external_id") or "").strip()
        if value and self._taken(external_id=value):
            raise ValidationError(_("Another contact already has this external id."))
        return value or None

    def clean_first_name(self) -> str:
        return normalise_name(self.cleaned_data.get("first_name"))

    def clean_last_name(self) -> str:
        return normalise_name(self.cleaned_data.get("last_name"))

    def clean_timezone(self) -> str:
        return validate_timezone(self.cleaned_data.get("timezone") or "")

    def clean_country(self) -> str:
        return normalise_country(self.cleaned_data.get("country"))

    def clean_locale(self) -> str:
        return normalise_locale(self.cleaned_data.get("locale"))

    def clean_attributes(self) -> Any:
        value = self.cleaned_data.get("attributes")
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ValidationError(_('Attributes must be a JSON object, e.g. {"plan": "pro"}.'))
        return value
