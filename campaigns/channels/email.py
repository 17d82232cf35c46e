"""Email: build a campaign message and send it through Django's email API.

The backend comes from settings (EMAIL_BACKEND, or anymail's backend for EMAIL_ESP), so any
ESP anymail supports works by configuration alone; the embedded default writes .eml files.

Provider errors become a ProviderError (campaigns/channels/base.py) of one of these kinds,
which decide what the send does next:

- ``retryable``: the provider certainly did not take the message (connection refused or never
  established, connect timeout, HTTP 429 or 5xx). Safe to send again.
- ``uncertain``: the request went out and no answer came back: a read timeout, or the
  connection dropped after the request was sent (requests raises ConnectionError with
  "Connection aborted" / RemoteDisconnected). The provider may have accepted it, so it is
  reconciled, never resent blindly.
- ``permanent``: the address can never receive (Postmark ErrorCode 300 invalid recipient, 406
  inactive recipient, which anymail reports as AnymailRecipientsRefused).

Anything else (a bad token, a malformed From) is ``failed``: it needs a person.
"""

from __future__ import annotations

import smtplib
import uuid
from email.utils import make_msgid

import requests
from anymail.exceptions import (
    AnymailAPIError,
    AnymailError,
    AnymailRecipientsRefused,
    AnymailRequestsAPIError,
)
from anymail.message import AnymailMessage
from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.message import EmailMessage, EmailMultiAlternatives
from django.core.mail.utils import DNS_NAME

from campaigns import tokens
from campaigns.channels.base import ChannelBackend, ErrorKind, ProviderError
from campaigns.channels.network import never_connected
from campaigns.models import Campaign, Delivery
from campaigns.rendering import RenderedMessage
from crm.models import Channel, Contact

DELIVERY_HEADER = "X-Cadence-Delivery"
# Postmark's API error codes for a recipient that can never receive.
POSTMARK_PERMANENT_CODES = frozenset({300, 406})


def _error(message: str, kind: ErrorKind, code: str) -> ProviderError:
    return ProviderError(message, kind=kind, code=code)


def _list_unsubscribe(*, delivery: Delivery, campaign: Campaign, contact: Contact) -> str:
    url = tokens.one_click_unsubscribe_url(
        contact_id=contact.pk,
        channel=campaign.channel,
        purpose=campaign.purpose,
        delivery_id=delivery.pk,
    )
    parts = [f"<{url}>"]
    if settings.UNSUBSCRIBE_MAILTO:
        parts.append(f"<mailto:{settings.UNSUBSCRIBE_MAILTO}?subject=unsubscribe>")
    return ", ".join(parts)


def build_email(
    *, delivery: Delivery, campaign: Campaign, contact: Contact, rendered: RenderedMessage
) -> EmailMessage:
    """A multipart message (text, and HTML when there is one). Marketing email carries the
    RFC 8058 List-Unsubscribe headers; every email carries the delivery id in anymail metadata
    (for tracking webhooks) and in an X-Cadence-Delivery header (visible in .eml files)."""
    headers: dict[str, str] = {DELIVERY_HEADER: str(delivery.pk)}
    if not campaign.is_transactional:
        headers["List-Unsubscribe"] = _list_unsubscribe(
            delivery=delivery, campaign=campaign, contact=contact
        )
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message: EmailMultiAlternatives = AnymailMessage(
        subject=rendered.subject,
        body=rendered.text,
        from_email=campaign.from_email or settings.DEFAULT_FROM_EMAIL,
        to=[delivery.to_address or contact.email or ""],
        reply_to=[campaign.reply_to] if campaign.reply_to else None,
        headers=headers,
        metadata={"delivery_id": str(delivery.pk)},
        tags=[campaign.slug],
    )
    if rendered.html:
        message.attach_alternative(rendered.html, "text/html")
    return message


def email_connection() -> BaseEmailBackend:
    """One connection for a whole batch: open it, send each message with it, close it."""
    return get_connection(fail_silently=False)


def _is_anymail(connection: BaseEmailBackend) -> bool:
    return type(connection).__module__.startswith("anymail.")


def _map_error(exc: AnymailError) -> ProviderError:
    if isinstance(exc, AnymailRecipientsRefused):
        return _error(str(exc), ErrorKind.PERMANENT, "recipient_refused")
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return _error(f"The provider did not answer in time: {exc}", ErrorKind.UNCERTAIN, "timeout")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if never_connected(exc):
            return _error(f"Could not reach the provider: {exc}", ErrorKind.RETRYABLE, "connection")
        return _error(
            f"The connection dropped after the request was sent: {exc}",
            ErrorKind.UNCERTAIN,
            "connection_dropped",
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return _error(str(exc), ErrorKind.UNCERTAIN, "timeout")
    status = getattr(exc, "status_code", None)
    if isinstance(exc, AnymailRequestsAPIError | AnymailAPIError) and status is not None:
        provider_code = _provider_error_code(exc)
        code = f"http_{status}" + (f"/{provider_code}" if provider_code is not None else "")
        if status == 429 or status >= 500:
            return _error(str(exc), ErrorKind.RETRYABLE, code)
        if provider_code in POSTMARK_PERMANENT_CODES:
            return _error(str(exc), ErrorKind.PERMANENT, code)
        return _error(str(exc), ErrorKind.FAILED, code)
    return _error(str(exc), ErrorKind.FAILED, type(exc).__name__)


def _provider_error_code(exc: AnymailError) -> int | None:
    response = getattr(exc, "response", None)
    if response is None:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    code = data.get("ErrorCode") if isinstance(data, dict) else None
    return code if isinstance(code, int) else None


def send_email(message: EmailMessage, *, connection: BaseEmailBackend | None = None) -> str:
    """Send one message; return the provider's message id (for anymail backends) or the
    Message-ID header this function set (other backends). Raises ProviderError."""
    connection = connection or email_connection()
    anymail = _is_anymail(connection)
    message_id = ""
    if not anymail and "Message-ID" not in message.extra_headers:
        message_id = make_msgid(idstring=uuid.uuid4().hex[:12], domain=str(DNS_NAME))
        message.extra_headers["Message-ID"] = message_id
    try:
        sent = connection.send_messages([message])
    except AnymailError as exc:
        raise _map_error(exc) from exc
    except smtplib.SMTPRecipientsRefused as exc:
        raise _error(str(exc), ErrorKind.PERMANENT, "recipient_refused") from exc
    except OSError as exc:  # SMTP and other non-anymail backends: nothing was accepted
        raise _error(f"Could not send: {exc}", ErrorKind.RETRYABLE, "connection") from exc
    if not sent:
        raise _error("The message has no recipient.", ErrorKind.PERMANENT, "no_recipient")
    if anymail:
        status = getattr(message, "anymail_status", None)
        provider_id = getattr(status, "message_id", None)
        return str(provider_id) if provider_id else ""
    return message_id.strip("<>")


class EmailChannel(ChannelBackend[EmailMessage]):
    """Email through Django's email API: one connection for the whole batch."""

    channel = Channel.EMAIL

    def __init__(self) -> None:
        self.connection: BaseEmailBackend | None = None

    def open(self) -> None:
        self.connection = email_connection()
        self.connection.open()

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()

    def build(
        self,
        *,
        delivery: Delivery,
        campaign: Campaign,
        contact: Contact,
        rendered: RenderedMessage,
    ) -> EmailMessage:
        return build_email(delivery=delivery, campaign=campaign, contact=contact, rendered=rendered)

    def deliver(self, message: EmailMessage) -> str:
        return send_email(message, connection=self.connection)
