"""A contact as the outside world sends it (an API object, a CSV row), checked and normalised
into a `ContactInput`, or the list of `FieldError`s naming each field at fault."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError

from crm.jsonbody import json_value_problems
from crm.models import MARKETING, Channel, ConsentRecord
from crm.normalise import (
    email_key,
    normalise_country,
    normalise_email,
    normalise_locale,
    normalise_name,
    normalise_phone,
    validate_timezone,
)
from crm.services.errors import FieldError

# Priority order: a contact is identified by the first of these that matches.
IDENTIFIER_FIELDS = ("external_id", "email", "phone")
PROFILE_FIELDS = ("first_name", "last_name", "timezone", "locale", "country")
CONTACT_FIELDS = (*IDENTIFIER_FIELDS, *PROFILE_FIELDS, "attributes", "consent")
CONSENT_FIELDS = ("channel", "purpose", "status", "text", "text_version")

# (kind, value) as ContactAlias stores it: email values are email keys (lowercased).
IdentityKey = tuple[str, str]


@dataclass(frozen=True)
class ConsentInput:
    channel: str  # "email" or "sms"
    status: str  # "granted" or "withdrawn"
    purpose: str = MARKETING
    text: str = ""
    text_version: str = ""


@dataclass
class ContactInput:
    """A normalised, validated contact. None means "not given, leave as is"; "" means
    "clear it". Attributes are merged into the existing ones (a key set to None removes it)."""

    external_id: str | None = None
    email: str | None = None  # normalised with crm.normalise.normalise_email
    phone: str | None = None  # E.164
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    locale: str | None = None
    country: str | None = None
    attributes: dict[str, Any] | None = None
    consent: list[ConsentInput] = field(default_factory=list)

    def identity_keys(self) -> list[IdentityKey]:
        """The (kind, value) keys that identify this contact, highest priority first."""
        keys: list[IdentityKey] = []
        if self.external_id:
            keys.append(("external_id", self.external_id))
        if self.email:
            keys.append(("email", email_key(self.email)))
        if self.phone:
            keys.append(("phone", self.phone))
        return keys


@functools.lru_cache(maxsize=65536)
def _phone_cached(raw: str, region: str) -> str:
    return normalise_phone(raw, region)


@functools.lru_cache(maxsize=65536)
def _email_cached(raw: str) -> str:
    return normalise_email(raw)


def _message(exc: ValidationError) -> str:
    return "; ".join(str(m) for m in exc.messages)


def _text(
    data: Mapping[str, Any], key: str, errors: list[FieldError], name: str, max_length: int
) -> str | None:
    """A string field: None when absent or null; an error when not a string or too long."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, f"must be a string, got {value!r}"))
        return None
    value = value.strip()
    if len(value) > max_length:
        errors.append(FieldError(name, f"{value[:40]!r}… is longer than {max_length} characters"))
        return None
    return value


def contact_input_parse(
    data: Mapping[str, Any], *, prefix: str = "", identifiers_only: bool = False
) -> tuple[ContactInput | None, list[FieldError]]:
    """Validate and normalise one contact given as a mapping (a JSON object, a CSV row).

    Keys: external_id, email, phone, first_name, last_name, timezone, locale, country,
    attributes (an object), consent (a list of {channel, purpose, status, text, text_version}).
    Absent or null = leave as is, "" = clear. At least one of external_id, email or phone must
    be given. Unknown keys are errors, so that nothing sent is silently dropped. With
    `identifiers_only` only external_id, email and phone are accepted (an event's contact).
    Field names in errors are prefixed with `prefix`, e.g. "contact." gives "contact.email".
    """
    where = prefix.rstrip(".") or "contact"
    if not isinstance(data, Mapping):
        return None, [FieldError(where, f"must be an object, got {data!r}")]
    # NUL, lone surrogates and numbers no column holds (from a CSV cell or JSON alike).
    if problems := json_value_problems(data, path=prefix.rstrip(".")):
        return None, problems
    errors = _unknown_keys(data, prefix=prefix, identifiers_only=identifiers_only)
    result = ContactInput()
    _parse_identifiers(data, result, errors, prefix=prefix)
    if not any(data.get(key) not in (None, "") for key in IDENTIFIER_FIELDS):
        errors.append(
            FieldError(where, "needs one of external_id, email or phone to identify the contact")
        )
    if not identifiers_only:
        _parse_profile(data, result, errors, prefix=prefix)
        _parse_attributes(data, result, errors, prefix=prefix)
        _parse_consent_list(data, result, errors, prefix=prefix)
    return (None, errors) if errors else (result, [])


def _unknown_keys(
    data: Mapping[str, Any], *, prefix: str, identifiers_only: bool
) -> list[FieldError]:
    allowed = IDENTIFIER_FIELDS if identifiers_only else CONTACT_FIELDS
    hint = (
        "only external_id, email and phone identify the contact of an event"
        if identifiers_only
        else f"known fields: {', '.join(CONTACT_FIELDS)}; custom data goes in attributes"
    )
    return [
        FieldError(f"{prefix}{key}", f"{key!r} is not a contact field ({hint})")
        for key in data
        if key not in allowed
    ]


def _normalised(
    raw: str | None,
    normalise: Callable[[str], str],
    errors: list[FieldError],
    name: str,
) -> str | None:
    """`raw` normalised (None: not given, "": cleared), or None with an error."""
    if not raw:
        return raw
    try:
        return normalise(raw)
    except ValidationError as exc:
        errors.append(FieldError(name, _message(exc)))
        return None


def _parse_identifiers(
    data: Mapping[str, Any], result: ContactInput, errors: list[FieldError], *, prefix: str
) -> None:
    raw_external_id = data.get("external_id")
    if isinstance(raw_external_id, int) and not isinstance(raw_external_id, bool):
        result.external_id = str(raw_external_id)
    else:
        result.external_id = _text(data, "external_id", errors, f"{prefix}external_id", 255)
    result.email = _normalised(
        _text(data, "email", errors, f"{prefix}email", 254),
        _email_cached,
        errors,
        f"{prefix}email",
    )
    result.phone = _normalised(
        _text(data, "phone", errors, f"{prefix}phone", 40),
        lambda raw: _phone_cached(raw, settings.PHONE_DEFAULT_REGION),
        errors,
        f"{prefix}phone",
    )


def _parse_profile(
    data: Mapping[str, Any], result: ContactInput, errors: list[FieldError], *, prefix: str
) -> None:
    for name in ("first_name", "last_name"):
        value = _text(data, name, errors, f"{prefix}{name}", 150)
        if value is not None:
            setattr(result, name, normalise_name(value))
    for name, check, max_length in (
        ("timezone", validate_timezone, 64),
        ("locale", normalise_locale, 35),
        ("country", normalise_country, 2),
    ):
        value = _text(data, name, errors, f"{prefix}{name}", 64)
        if value is None:
            continue
        try:
            value = check(value)
        except ValidationError as exc:
            errors.append(FieldError(f"{prefix}{name}", _message(exc)))
            continue
        if len(value) > max_length:
            errors.append(FieldError(f"{prefix}{name}", f"{value!r} is too long"))
            continue
        setattr(result, name, value)


def _parse_attributes(
    data: Mapping[str, Any], result: ContactInput, errors: list[FieldError], *, prefix: str
) -> None:
    attributes = data.get("attributes")
    if attributes is None:
        return
    if not isinstance(attributes, Mapping):
        errors.append(FieldError(f"{prefix}attributes", f"must be an object, got {attributes!r}"))
    elif bad := [key for key in attributes if not isinstance(key, str) or not key.strip()]:
        errors.append(FieldError(f"{prefix}attributes", f"keys must be names, got {bad!r}"))
    else:
        result.attributes = dict(attributes)


def _parse_consent_list(
    data: Mapping[str, Any], result: ContactInput, errors: list[FieldError], *, prefix: str
) -> None:
    consent = data.get("consent")
    if consent is None:
        return
    if not isinstance(consent, list):
        errors.append(FieldError(f"{prefix}consent", f"must be a list, got {consent!r}"))
        return
    for position, entry in enumerate(consent):
        parsed, entry_errors = _consent_parse(entry, prefix=f"{prefix}consent[{position}].")
        errors.extend(entry_errors)
        if parsed is not None:
            result.consent.append(parsed)


def _consent_parse(data: Any, *, prefix: str) -> tuple[ConsentInput | None, list[FieldError]]:
    if not isinstance(data, Mapping):
        return None, [FieldError(prefix.rstrip("."), f"must be an object, got {data!r}")]
    known = ", ".join(CONSENT_FIELDS)
    errors = [
        FieldError(f"{prefix}{key}", f"{key!r} is not a consent field ({known})")
        for key in data
        if key not in CONSENT_FIELDS
    ]
    channel = _text(data, "channel", errors, f"{prefix}channel", 10)
    if channel not in Channel.values:
        errors.append(
            FieldError(f"{prefix}channel", f"{channel!r} is not a channel (email or sms)")
        )
    status = _text(data, "status", errors, f"{prefix}status", 10)
    if status not in ConsentRecord.Status.values:
        errors.append(
            FieldError(f"{prefix}status", f"{status!r} is not a status (granted or withdrawn)")
        )
    purpose = _text(data, "purpose", errors, f"{prefix}purpose", 64) or MARKETING
    text = _text(data, "text", errors, f"{prefix}text", 10_000) or ""
    text_version = _text(data, "text_version", errors, f"{prefix}text_version", 64) or ""
    if errors or channel is None or status is None:
        return None, errors
    return ConsentInput(
        channel=channel, status=status, purpose=purpose, text=text, text_version=text_version
    ), []
