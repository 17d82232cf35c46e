"""Normalisation and validation of what enters the customer database.

Every way in (API, CSV import, admin, subscribe form) goes through these functions, so that a
contact is stored, looked up and deduplicated by the same keys. Errors are ValidationError
with a message that names the bad value; callers add the row or field.
"""

from __future__ import annotations

import hashlib
import re
import zoneinfo
from functools import cache, lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import (
    CASE_INSENSITIVE_MAILBOX_NAMES,
    DOT_ATOM_TEXT,
    EMAIL_MAX_LENGTH,
)

_SPACES = re.compile(r"\s+")
_PLAIN_DOMAIN = re.compile(r"[A-Za-z0-9.-]+")


@lru_cache(maxsize=4096)
def _checked_domain(domain: str) -> tuple[str, str] | None:
    """email-validator's (normalised, IDNA ASCII) forms of a domain, or None if it refuses it.
    The domain is judged on its own, so the verdict holds for any plain local part."""
    try:
        result = validate_email(f"x@{domain}", check_deliverability=False)
    except EmailNotValidError:
        return None
    return result.domain, result.ascii_domain


def _plain_email(value: str) -> str | None:
    """The normalised form of a plain address (an ASCII dot-atom local part, a letters, digits,
    hyphens and dots domain), exactly as email-validator would give it, or None to let
    email-validator decide. Nearly every address is plain and shares its domain with many,
    so a batch of new contacts costs a few domain checks instead of a full validation each."""
    local, at, domain = value.partition("@")
    if not at or not _PLAIN_DOMAIN.fullmatch(domain) or not DOT_ATOM_TEXT.match(local):
        return None
    if local.lower() in CASE_INSENSITIVE_MAILBOX_NAMES:
        return None  # postmaster@, abuse@...: email-validator lowercases these
    checked = _checked_domain(domain)
    if checked is None:
        return None
    normalised_domain, ascii_domain = checked
    normalised = f"{local}@{normalised_domain}"
    # The three lengths email-validator checks (as given, normalised, IDNA ASCII), in bytes.
    if (
        max(len(value), len(normalised.encode()), len(local) + 1 + len(ascii_domain))
        > EMAIL_MAX_LENGTH
    ):
        return None
    return normalised


def normalise_email(raw: str) -> str:
    """Trim, validate syntax (no DNS), lowercase the domain. The local part keeps its case
    for display; `email_key` is what lookups and uniqueness use."""
    value = (raw or "").strip()
    if not value:
        raise ValidationError("email is empty")
    normalised = _plain_email(value)
    if normalised is None:
        try:
            normalised = validate_email(value, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValidationError(f"{value!r} is not a valid email address: {exc}") from exc
    local, _, domain = normalised.rpartition("@")
    return f"{local}@{domain.lower()}"


def email_key(normalised_email: str) -> str:
    """The case-insensitive lookup key of an already normalised email."""
    return normalised_email.lower()


def normalise_phone(raw: str, region: str | None = None) -> str:
    """Parse with the default region from settings and return E.164 (+15551234567)."""
    value = (raw or "").strip()
    if not value:
        raise ValidationError("phone is empty")
    try:
        parsed = phonenumbers.parse(value, region or settings.PHONE_DEFAULT_REGION)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(f"{value!r} is not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValidationError(f"{value!r} is not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


@cache
def _iana_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def validate_timezone(raw: str) -> str:
    """An IANA zone name such as Europe/Paris or Asia/Shanghai; '' means unknown."""
    value = (raw or "").strip()
    if value and value not in _iana_zones():
        raise ValidationError(f"{value!r} is not an IANA time zone (e.g. Europe/Paris)")
    return value


def normalise_name(raw: str | None) -> str:
    """Collapse runs of whitespace and trim; every other character is kept exactly."""
    return _SPACES.sub(" ", raw or "").strip()


def normalise_country(raw: str | None) -> str:
    value = (raw or "").strip().upper()
    if value and not re.fullmatch(r"[A-Z]{2}", value):
        raise ValidationError(f"{raw!r} is not a two-letter ISO 3166 country code (e.g. DE)")
    return value


def normalise_locale(raw: str | None) -> str:
    value = (raw or "").strip().replace("_", "-")
    if value and not re.fullmatch(r"[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*", value):
        raise ValidationError(f"{raw!r} is not a locale tag (e.g. en-GB, zh-Hans)")
    return value


def address_hash(channel: str, address: str) -> str:
    """SHA-256 of a channel's normalised address, as kept in the suppression list: the
    address itself need not be stored to keep an erased person out of marketing."""
    key = email_key(address) if channel == "email" else address
    return hashlib.sha256(f"{channel}:{key}".encode()).hexdigest()
