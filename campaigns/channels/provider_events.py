"""What providers tell us, in our own terms: Twilio's request signatures and TwiML answers,
and anymail's normalised tracking events turned into a JSON-safe `EmailEvent` that a Celery
task can carry. Kept here because only campaigns/channels/ imports anymail and twilio."""

from __future__ import annotations

import hashlib
import json
from typing import Any, TypedDict

from django.dispatch import Signal

# Postmark reports soft bounces as anymail "bounced"; its own Type says which they are.
_SOFT_BOUNCE_TYPES = frozenset({"SoftBounce", "Transient", "DnsError"})
_EVENT_ID_MAX = 200


class EmailEvent(TypedDict):
    """One tracking event as the webhook task carries it (JSON)."""

    provider: str  # e.g. "postmark"
    event_id: str  # "<event type>:<provider id>", or a hash of the raw payload when absent
    event_type: str  # anymail's EventType: delivered, opened, clicked, bounced, ...
    soft: bool  # a temporary failure: the provider keeps trying
    message_id: str  # the provider's message id, "" when absent
    delivery_id: int | None  # from the metadata we sent with the message
    recipient: str
    click_url: str
    occurred_at: str | None  # ISO 8601
    description: str
    raw: Any  # the provider's event, JSON-safe


def tracking_signal() -> Signal:
    from anymail.signals import tracking

    return tracking


def _json_safe(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=str))
    except (TypeError, ValueError):
        return str(value)


def _delivery_id(metadata: Any) -> int | None:
    if not isinstance(metadata, dict):
        return None
    value = metadata.get("delivery_id")
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if number > 0 else None


def email_event_from_anymail(event: Any, *, esp_name: str) -> EmailEvent:
    """Normalise an anymail AnymailTrackingEvent. Providers resend the same event many times;
    event_id stays the same across resends, so the task can deduplicate on it."""
    raw = _json_safe(event.esp_event)
    event_type = str(event.event_type or "unknown")
    esp_type = raw.get("Type") if isinstance(raw, dict) else None
    soft = event_type == "deferred" or (event_type == "bounced" and esp_type in _SOFT_BOUNCE_TYPES)
    provider_id = str(event.event_id) if event.event_id else ""
    if not provider_id:
        provider_id = hashlib.sha256(
            json.dumps(raw, sort_keys=True, default=str).encode()
        ).hexdigest()
    event_id = f"{event_type}:{provider_id}"
    if len(event_id) > _EVENT_ID_MAX:
        event_id = f"{event_type}:sha256:{hashlib.sha256(provider_id.encode()).hexdigest()}"
    timestamp = event.timestamp
    return {
        "provider": str(esp_name).lower().replace(" ", "_"),
        "event_id": event_id,
        "event_type": event_type,
        "soft": soft,
        "message_id": str(event.message_id or ""),
        "delivery_id": _delivery_id(event.metadata),
        "recipient": str(event.recipient or ""),
        "click_url": str(event.click_url or ""),
        "occurred_at": timestamp.isoformat() if timestamp else None,
        "description": str(event.description or event.mta_response or "")[:1000],
        "raw": raw,
    }


def twilio_signature_valid(*, url: str, params: Any, signature: str, auth_token: str) -> bool:
    """Whether a webhook really comes from Twilio: the X-Twilio-Signature header is an HMAC of
    the full URL Twilio called and the POSTed parameters, keyed with the auth token."""
    if not (auth_token and signature):
        return False
    from twilio.request_validator import RequestValidator

    return bool(RequestValidator(auth_token).validate(url, params, signature))


def twiml_answer(message: str | None = None) -> str:
    """An empty <Response/>, or one <Message>; the library escapes the text."""
    from twilio.twiml.messaging_response import MessagingResponse

    answer = MessagingResponse()
    if message:
        answer.message(message)
    return str(answer)


def twilio_signature(*, url: str, params: Any, auth_token: str) -> str:
    """The X-Twilio-Signature Twilio would send for this request (the demo and benchmarks
    sign their simulated replies with it)."""
    from twilio.request_validator import RequestValidator

    return str(RequestValidator(auth_token).compute_signature(url, params))
