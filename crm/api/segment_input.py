"""One call of the Segment spec (track, page, screen, identify, alias) checked and turned into
what Cadence stores: an `EventInput`, a `ContactInput`, or ids to tie together.

The checks are those of /api/v1/events and /api/v1/contacts (the same parsers run underneath);
their field names are translated back into the names the client sent, so that an error says
`timestamp`, `event` or `traits.email`, not our own column names.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from crm.jsonbody import json_value_problems
from crm.services.contact_input import ContactInput, contact_input_parse
from crm.services.errors import FieldError
from crm.services.event_input import EventInput, event_input_parse
from crm.services.identities import ANONYMOUS_PREFIX, anonymous_external_id

# Segment's own limit per call; its clients refuse larger messages before sending.
MAX_CALL_BYTES = 32 * 1024
KINDS = ("track", "page", "screen", "identify", "alias")
MAX_ID_LENGTH = 255
PAGE_VIEWED = "page_viewed"
SCREEN_VIEWED = "screen_viewed"
# Traits that are contact fields; every other trait is kept in the contact's attributes.
_TRAIT_FIELDS = {
    "email": "email",
    "phone": "phone",
    "firstName": "first_name",
    "first_name": "first_name",
    "lastName": "last_name",
    "last_name": "last_name",
}
# Properties of an ecommerce event that carry its value (Segment's spec), first found wins.
_VALUE_PROPERTIES = ("revenue", "value", "total")
_NOT_NAME = re.compile(r"[\W_]+")


@dataclass
class SegmentCall:
    kind: str
    user_id: str | None
    anonymous_id: str | None
    event: EventInput | None = None  # track, page, screen
    contact: ContactInput | None = None  # identify
    previous_id: str | None = None  # alias
    # identify by an address without a userId: the anonymous id is tied to the contact after
    anonymous_link: bool = False

    @property
    def external_id(self) -> str:
        """Whom the call is about: the user id, else the anonymous visitor's own contact."""
        if self.user_id:
            return self.user_id
        assert self.anonymous_id is not None
        return anonymous_external_id(self.anonymous_id)


def event_type_name(event: str) -> str:
    """Segment's "Order Completed" is Cadence's order_completed: lowercase, every run of
    characters that are not letters or digits one underscore."""
    return _NOT_NAME.sub("_", event.casefold()).strip("_")


def _id(item: Mapping[str, Any], name: str, errors: list[FieldError], limit: int) -> str | None:
    raw = item.get(name)
    if isinstance(raw, int) and not isinstance(raw, bool):
        raw = str(raw)
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    if not isinstance(raw, str):
        errors.append(FieldError(name, f"must be a string or an integer, got {raw!r}"))
        return None
    value = raw.strip()
    if len(value) > limit:
        errors.append(FieldError(name, f"{value[:40]!r}… is longer than {limit} characters"))
        return None
    return value


def _object(item: Mapping[str, Any], name: str, errors: list[FieldError]) -> dict[str, Any]:
    raw = item.get(name)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        errors.append(FieldError(name, f"must be an object, got {raw!r}"))
        return {}
    return dict(raw)


def _instant(raw: Any, name: str, errors: list[FieldError]) -> dt.datetime | None:
    if raw is None or raw == "":
        return None
    try:
        value = dt.datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        value = None
    if value is None or value.utcoffset() is None:
        errors.append(
            FieldError(
                name, f"must be ISO 8601 with a zone, e.g. 2026-03-01T09:30:00Z, got {raw!r}"
            )
        )
        return None
    return value


def _occurred_at(
    item: Mapping[str, Any],
    errors: list[FieldError],
    *,
    sent_at: dt.datetime | None,
    received_at: dt.datetime,
) -> tuple[dt.datetime, str]:
    """When it happened and the field that said so, as Segment documents it: `timestamp` as
    given; else `originalTimestamp` corrected for the device's clock skew by
    receivedAt - (sentAt - originalTimestamp) when `sentAt` (the call's, else the batch's) is
    known; else the time we received it."""
    timestamp = _instant(item.get("timestamp"), "timestamp", errors)
    if timestamp is not None:
        return timestamp, "timestamp"
    original = _instant(item.get("originalTimestamp"), "originalTimestamp", errors)
    sent_at = _instant(item.get("sentAt"), "sentAt", errors) or sent_at
    if original is None:
        return received_at, "timestamp"
    if sent_at is None:
        return original, "originalTimestamp"
    return received_at - (sent_at - original), "originalTimestamp"


def _rename(errors: list[FieldError], names: Mapping[str, str]) -> list[FieldError]:
    """Our parser's field names as the client sent them (`occurred_at` -> `timestamp`)."""
    renamed = []
    for error in errors:
        head, dot, rest = error.field.partition(".")
        if error.field in names:
            renamed.append(FieldError(names[error.field], error.message))
        elif head in names and dot:
            renamed.append(FieldError(f"{names[head]}.{rest}", error.message))
        else:
            renamed.append(error)
    return renamed


def segment_call_parse(
    item: Any, *, kind: str | None, sent_at: dt.datetime | None, received_at: dt.datetime
) -> tuple[SegmentCall | None, list[FieldError]]:
    """Check one call. `kind` is the endpoint's (track, …), or None in a batch, where each
    call's `type` says. Fields the spec has but Cadence does not use (context, integrations,
    channel, version, …) are accepted and not stored; see docs/api.md."""
    if not isinstance(item, Mapping):
        return None, [FieldError("", f"a call must be an object, got {item!r}")]
    if problems := json_value_problems(item):
        return None, problems
    size = len(json.dumps(item, ensure_ascii=False).encode())
    if size > MAX_CALL_BYTES:
        return None, [FieldError("", f"the call is {size} bytes; at most {MAX_CALL_BYTES}")]
    errors: list[FieldError] = []
    stated = item.get("type")
    if kind is None and stated not in KINDS:
        errors.append(FieldError("type", f"must be one of {', '.join(KINDS)}, got {stated!r}"))
    elif kind is not None and stated not in (None, kind):
        errors.append(FieldError("type", f"{stated!r} sent to the {kind} endpoint"))
    kind = kind or str(stated)
    user_id = _id(item, "userId", errors, MAX_ID_LENGTH)
    anonymous_id = _id(item, "anonymousId", errors, MAX_ID_LENGTH - len(ANONYMOUS_PREFIX))
    if user_id and user_id.startswith(ANONYMOUS_PREFIX):
        errors.append(FieldError("userId", f"must not start with {ANONYMOUS_PREFIX!r}"))
    _object(item, "context", errors)
    if errors:
        return None, errors
    call = SegmentCall(kind=kind, user_id=user_id, anonymous_id=anonymous_id)
    if kind == "alias":
        return _alias(item, call)
    if not user_id and not anonymous_id:
        return None, [FieldError("userId", "give a userId or an anonymousId (or both)")]
    if kind == "identify":
        return _identify(item, call)
    return _event(item, call, sent_at=sent_at, received_at=received_at)


def _alias(
    item: Mapping[str, Any], call: SegmentCall
) -> tuple[SegmentCall | None, list[FieldError]]:
    errors: list[FieldError] = []
    call.previous_id = _id(item, "previousId", errors, MAX_ID_LENGTH - len(ANONYMOUS_PREFIX))
    if not errors and not call.previous_id:
        errors.append(FieldError("previousId", "is required: the id the person had before"))
    if not call.user_id:
        errors.append(FieldError("userId", "is required: the id the person has now"))
    return (None, errors) if errors else (call, [])


def _identify(
    item: Mapping[str, Any], call: SegmentCall
) -> tuple[SegmentCall | None, list[FieldError]]:
    errors: list[FieldError] = []
    traits = _object(item, "traits", errors)
    if errors:
        return None, errors
    contact: dict[str, Any] = {"external_id": call.external_id}
    names = {"external_id": "userId" if call.user_id else "anonymousId", "attributes": "traits"}
    if not call.user_id and any(
        isinstance(traits.get(trait), str) and traits[trait].strip() for trait in ("email", "phone")
    ):
        # Someone not signed in who gives an address (a newsletter form): the address names
        # them, perhaps a known customer whose own external id must stay; the anonymous id is
        # tied to them afterwards (SegmentCall.anonymous_link).
        del contact["external_id"]
    attributes: dict[str, Any] = {}
    for trait, value in traits.items():
        field = _TRAIT_FIELDS.get(trait)
        if field is None:
            attributes[trait] = value
        elif field not in contact:
            contact[field] = value
            names[field] = f"traits.{trait}"
    full_name = traits.get("name")
    if isinstance(full_name, str) and "first_name" not in contact and "last_name" not in contact:
        first, _, last = full_name.strip().partition(" ")
        contact.update(first_name=first, last_name=last.strip() or None)
        names.update(first_name="traits.name", last_name="traits.name")
    if attributes:
        contact["attributes"] = attributes
    parsed, problems = contact_input_parse(contact)
    if parsed is None:
        return None, _rename(problems, names)
    call.contact = parsed
    call.anonymous_link = "external_id" not in contact
    return call, []


def _event(
    item: Mapping[str, Any],
    call: SegmentCall,
    *,
    sent_at: dt.datetime | None,
    received_at: dt.datetime,
) -> tuple[SegmentCall | None, list[FieldError]]:
    errors: list[FieldError] = []
    properties = _object(item, "properties", errors)
    occurred_at, time_field = _occurred_at(item, errors, sent_at=sent_at, received_at=received_at)
    names = {
        "id": "messageId",
        "occurred_at": time_field,
        "contact.external_id": "userId" if call.user_id else "anonymousId",
        "currency": "properties.currency",
    }
    if call.kind == "track":
        event = item.get("event")
        event_type = event_type_name(event) if isinstance(event, str) else event
        if event_type == "":
            errors.append(FieldError("event", f"{event!r} has no letters or digits"))
        names["type"] = "event"
    else:
        event_type = PAGE_VIEWED if call.kind == "page" else SCREEN_VIEWED
        for key in ("name", "category"):
            if isinstance(item.get(key), str) and key not in properties:
                properties[key] = item[key]
    value_key = next((key for key in _VALUE_PROPERTIES if key in properties), None)
    if value_key is not None:
        names["value"] = f"properties.{value_key}"
    if errors:
        return None, errors
    parsed, problems = event_input_parse(
        {
            "id": item.get("messageId"),
            "type": event_type,
            "occurred_at": occurred_at.isoformat(),
            "contact": {"external_id": call.external_id},
            "properties": properties,
            "value": properties.get(value_key) if value_key else None,
            "currency": properties.get("currency") or "",
        }
    )
    if parsed is None:
        return None, _rename(problems, names)
    call.event = parsed
    return call, []
