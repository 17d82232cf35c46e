"""An event as the outside world sends it (an API object, a CSV row), checked and normalised
into an `EventInput`, or the list of `FieldError`s naming each field at fault."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from django.utils import timezone

from crm.jsonbody import json_value_problems
from crm.services.contact_input import ContactInput, contact_input_parse
from crm.services.errors import FieldError

EVENT_FIELDS = ("id", "type", "occurred_at", "contact", "properties", "value", "currency")
# Clocks drift; an event further ahead than this is a client bug, not a future purchase.
MAX_FUTURE = dt.timedelta(days=1)
# Nothing a contact did predates the Unix epoch; an earlier time is a client's placeholder or
# a wrong unit, and times near year 1 or 9999 overflow when converted to UTC.
EARLIEST = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MAX_VALUE = Decimal("1e12")  # the column holds 14 digits, 2 after the point
_CENT = Decimal("0.01")


@dataclass
class EventInput:
    client_id: str | None  # the client's own id of the event, for deduplication
    type: str
    occurred_at: dt.datetime  # aware, UTC
    contact: ContactInput  # only its identifiers are used, to find or create the contact
    properties: dict[str, Any] = field(default_factory=dict)
    value: Decimal | None = None
    currency: str = ""


def _parse_occurred_at(raw: Any, errors: list[FieldError]) -> dt.datetime | None:
    if not isinstance(raw, str) or not raw.strip():
        errors.append(
            FieldError(
                "occurred_at",
                f"must be an ISO 8601 date and time with a zone, e.g. "
                f"2026-03-01T09:30:00Z, got {raw!r}",
            )
        )
        return None
    try:
        value = dt.datetime.fromisoformat(raw.strip())
    except ValueError:
        errors.append(
            FieldError(
                "occurred_at",
                f"{raw!r} is not an ISO 8601 date and time (e.g. 2026-03-01T09:30:00Z)",
            )
        )
        return None
    if value.tzinfo is None or value.utcoffset() is None:
        errors.append(
            FieldError("occurred_at", f"{raw!r} has no time zone; add Z or an offset like +02:00")
        )
        return None
    try:
        value = value.astimezone(dt.UTC)
    except OverflowError:  # 9999-12-31T23:59:59-14:00 is in year 10000 in UTC
        errors.append(FieldError("occurred_at", f"{raw!r} is out of range"))
        return None
    if value < EARLIEST:
        errors.append(FieldError("occurred_at", f"{raw!r} is before 1970-01-01T00:00:00Z"))
        return None
    if value > timezone.now() + MAX_FUTURE:
        errors.append(FieldError("occurred_at", f"{raw!r} is more than a day in the future"))
        return None
    return value


def _parse_value(raw: Any, errors: list[FieldError]) -> Decimal | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        errors.append(FieldError("value", f"must be a number such as 42.50, got {raw!r}"))
        return None
    if isinstance(raw, float) and not math.isfinite(raw):
        errors.append(FieldError("value", f"{raw!r} is not a finite number"))
        return None
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        errors.append(FieldError("value", f"{raw!r} is not a number such as 42.50"))
        return None
    # copy_abs, not abs(): abs() rounds in the context and raises Overflow for 1e999999999.
    # Checked again once rounded: 999999999999.999 rounds to 13 digits before the point.
    if not value.is_finite() or value.copy_abs() >= _MAX_VALUE:
        errors.append(FieldError("value", f"{raw!r} is out of range"))
        return None
    value = value.quantize(_CENT, rounding=ROUND_HALF_EVEN)
    if value.copy_abs() >= _MAX_VALUE:
        errors.append(FieldError("value", f"{raw!r} is out of range"))
        return None
    return value


def _parse_client_id(raw_id: Any, errors: list[FieldError]) -> str | None:
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        return str(raw_id)
    if isinstance(raw_id, str) and raw_id.strip():
        client_id = raw_id.strip()
        if len(client_id) > 255:
            errors.append(FieldError("id", f"{client_id[:40]!r}… is longer than 255 characters"))
        return client_id
    if raw_id not in (None, ""):
        errors.append(FieldError("id", f"must be a string or an integer, got {raw_id!r}"))
    return None


def _check_event_type(event_type: Any, errors: list[FieldError]) -> None:
    if not isinstance(event_type, str) or not event_type.strip():
        errors.append(
            FieldError("type", f"must be a name such as order_completed, got {event_type!r}")
        )
    elif len(event_type.strip()) > 100 or not event_type.strip().isprintable():
        errors.append(FieldError("type", f"{event_type[:40]!r} is not a usable event type name"))


def _check_currency(currency: Any, errors: list[FieldError]) -> None:
    if not isinstance(currency, str) or (
        currency and not (len(currency.strip()) == 3 and currency.strip().isalpha())
    ):
        errors.append(FieldError("currency", f"{currency!r} is not an ISO 4217 code (e.g. EUR)"))


def event_input_parse(data: Mapping[str, Any]) -> tuple[EventInput | None, list[FieldError]]:
    """Validate and normalise one event given as a mapping (a JSON object, a CSV row).

    Keys: id (optional, the client's id: a replay with the same id is a duplicate), type,
    occurred_at (ISO 8601 with a zone), contact ({external_id|email|phone}), properties
    (an object), value (a number), currency (ISO 4217). Unknown keys are errors.
    """
    if not isinstance(data, Mapping):
        return None, [FieldError("", f"an event must be an object, got {data!r}")]
    # NUL, lone surrogates and numbers no column holds, anywhere in the event (names too):
    # reported alone, as the other checks would only trip over the same characters.
    if problems := json_value_problems(data):
        return None, problems
    errors = [
        FieldError(key, f"{key!r} is not an event field ({', '.join(EVENT_FIELDS)})")
        for key in data
        if key not in EVENT_FIELDS
    ]

    client_id = _parse_client_id(data.get("id"), errors)
    event_type = data.get("type")
    _check_event_type(event_type, errors)
    occurred_at = _parse_occurred_at(data.get("occurred_at"), errors)

    contact: ContactInput | None = None
    raw_contact = data.get("contact")
    if raw_contact is None:
        errors.append(FieldError("contact", 'is required, e.g. {"email": "ada@example.com"}'))
    else:
        contact, contact_errors = contact_input_parse(
            raw_contact, prefix="contact.", identifiers_only=True
        )
        errors.extend(contact_errors)

    properties = data.get("properties")
    if properties is None:
        properties = {}
    elif not isinstance(properties, Mapping):
        errors.append(FieldError("properties", f"must be an object, got {properties!r}"))

    value = _parse_value(data.get("value"), errors)

    currency = data.get("currency") or ""
    _check_currency(currency, errors)

    if errors or contact is None or occurred_at is None or not isinstance(event_type, str):
        return None, errors
    return EventInput(
        client_id=client_id,
        type=event_type.strip(),
        occurred_at=occurred_at,
        contact=contact,
        properties=dict(properties),
        value=value,
        currency=str(currency).strip().upper(),
    ), []
