"""What providers tell us, in our own terms: Twilio's request signatures and TwiML answers,
and anymail's normalised tracking events turned into a JSON-safe `EmailEvent` that a Celery
task can carry. Kept here because only campaigns/channels/ imports anymail and twilio."""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Callable
from typing import Any, TypedDict

from django.core.exceptions import RequestDataTooBig
from django.dispatch import Signal
from django.http import HttpRequest, HttpResponse

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

    signal: Signal = tracking  # anymail ships no types
    return signal


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
    if timestamp is not None and not isinstance(timestamp, dt.datetime):
        raise TypeError(f"timestamp is a {type(timestamp).__name__}, not a datetime")
    if timestamp is not None and timestamp.tzinfo is not None:
        # Stored in UTC later; a date that overflows there (9999-12-31T23:59:59-14:00) is
        # refused here, while the webhook can still answer 400.
        timestamp = timestamp.astimezone(dt.UTC)
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


# --- anymail's tracking webhooks, guarded ------------------------------------------------------


class WebhookUnauthorized(Exception):
    """The request's credentials are missing or wrong: answer 401, apply nothing."""


class WebhookMalformed(Exception):
    """The body cannot be read as the ESP's events: answer `status`, apply nothing."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def _bad_text(value: Any, where: str = "event") -> str | None:
    """The first place in a JSON-safe value holding a NUL or a lone surrogate (PostgreSQL
    refuses both and they break pages that show the payload later), or None."""
    if isinstance(value, str):
        if "\x00" in value:
            return f"{where} contains a NUL character"
        if any("\ud800" <= char <= "\udfff" for char in value):
            return f"{where} contains a lone surrogate"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            found = _bad_text(key, f"{where} key") or _bad_text(item, f"{where}.{key}"[:200])
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _bad_text(item, f"{where}[{index}]")
            if found:
                return found
    return None


@functools.cache
def anymail_tracking_esps() -> dict[str, type[Any]]:
    """anymail's tracking webhook view class for each ESP name (the EMAIL_ESP values), read
    from anymail's own URL patterns so that a new anymail ESP needs no change here."""
    from anymail import urls

    return {
        str(pattern.name).removesuffix("_tracking_webhook"): pattern.callback.view_class
        for pattern in urls.urlpatterns
        if str(getattr(pattern, "name", "")).endswith("_tracking_webhook")
    }


def anymail_tracking_view_problem(esp: str) -> str | None:
    """Why anymail's tracking view for `esp` cannot run with the current settings (Mailgun, for
    example, also needs its webhook signing key), or None."""
    from anymail.exceptions import AnymailConfigurationError

    view_class = anymail_tracking_esps()[esp]
    try:
        view_class()
    except AnymailConfigurationError as exc:
        return str(exc)
    return None


@functools.cache
def _guarded_tracking_view(esp: str) -> Callable[..., HttpResponse]:
    """anymail's tracking view for `esp`, with its failures turned into our exceptions: anymail
    answers a bad password with 400 and lets a body it cannot parse become a 500."""
    from anymail.exceptions import AnymailWebhookValidationFailure

    base: type[Any] = anymail_tracking_esps()[esp]

    class GuardedTrackingView(base):
        def run_validators(self, request: HttpRequest) -> None:
            try:
                super().run_validators(request)
            except AnymailWebhookValidationFailure as exc:
                raise WebhookUnauthorized(str(exc)) from exc
            except RequestDataTooBig as exc:
                raise WebhookMalformed(str(exc), status=413) from exc
            except Exception as exc:
                # A signature check that chokes on the body: refused, never a 500.
                raise WebhookMalformed(f"unreadable {esp} webhook: {exc!r}"[:300]) from exc

        def parse_events(self, request: HttpRequest) -> list[Any]:
            try:
                events = list(super().parse_events(request))
                # Normalised here, inside the request, so that a body that cannot become an
                # EmailEvent is refused with 400 instead of failing later in a task.
                normalised = [email_event_from_anymail(e, esp_name=self.esp_name) for e in events]
                problem = next(filter(None, (_bad_text(event) for event in normalised)), None)
            except RequestDataTooBig as exc:
                raise WebhookMalformed(str(exc), status=413) from exc
            except Exception as exc:
                # Parsing is free of side effects, and a hostile body can make anymail's
                # parser raise anything (KeyError, TypeError, RecursionError, ...).
                raise WebhookMalformed(f"unreadable {esp} webhook: {exc!r}"[:300]) from exc
            if problem:
                raise WebhookMalformed(problem)
            return events

    view: Callable[..., HttpResponse] = GuardedTrackingView.as_view()
    return view


def anymail_tracking_handle(request: HttpRequest, *, esp: str) -> HttpResponse:
    """Run anymail's tracking webhook for `esp` (a key of anymail_tracking_esps()). Raises
    WebhookUnauthorized or WebhookMalformed; the signal is sent only for a valid request."""
    return _guarded_tracking_view(esp)(request)


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
