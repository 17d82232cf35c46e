"""SMS backends behind one interface, chosen by settings.SMS_BACKEND:

- ``file`` (default): appends one JSON object per message to SMS_OUTBOX_FILE;
- ``locmem``: keeps messages in ``sms.outbox`` for tests in the same process;
- ``twilio``: the real twilio client (TWILIO_* settings).

Errors are raised as SmsError, which says whether the provider certainly did not take the
message (safe to retry), whether it is permanent, or whether the outcome is uncertain.
"""

from __future__ import annotations

import fcntl
import json
import re
import uuid
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

from campaigns.channels.network import never_connected

if TYPE_CHECKING:
    from campaigns.models import Campaign, Delivery
    from campaigns.rendering import RenderedMessage
    from crm.models import Contact


@dataclass
class SmsMessage:
    to: str
    body: str
    from_: str = ""
    messaging_service_sid: str = ""
    status_callback: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class SmsResult:
    provider_message_id: str
    status: str = "queued"


class SmsError(Exception):
    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        retryable: bool = False,
        permanent: bool = False,
        uncertain: bool = False,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable
        self.permanent = permanent
        self.uncertain = uncertain


class BaseSmsBackend:
    def send(self, message: SmsMessage) -> SmsResult:
        raise NotImplementedError


class FileSmsBackend(BaseSmsBackend):
    """One JSON line per message; an exclusive lock keeps lines whole across processes."""

    def send(self, message: SmsMessage) -> SmsResult:
        path = settings.SMS_OUTBOX_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        message_id = f"SMfile{uuid.uuid4().hex}"
        record = {
            "to": message.to,
            "from": message.from_ or message.messaging_service_sid,
            "body": message.body,
            "id": message_id,
            "status_callback": message.status_callback,
            "metadata": message.metadata,
            "sent_at": timezone.now().isoformat(),
        }
        line = json.dumps(record, ensure_ascii=False) + "\n"
        with open(path, "a", encoding="utf-8") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                handle.write(line)
                handle.flush()
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
        return SmsResult(provider_message_id=message_id)


class LocmemSmsBackend(BaseSmsBackend):
    outbox: list[dict[str, Any]] = []

    def send(self, message: SmsMessage) -> SmsResult:
        message_id = f"SMlocmem{uuid.uuid4().hex}"
        LocmemSmsBackend.outbox.append({**asdict(message), "id": message_id})
        return SmsResult(provider_message_id=message_id)


class TwilioSmsBackend(BaseSmsBackend):
    # Twilio's answers that mean the number can never receive from us.
    PERMANENT_CODES = frozenset({21211, 21214, 21610, 21612, 21614, 30003, 30005, 30006})

    def __init__(self) -> None:
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        base_url = settings.TWILIO_API_BASE_URL
        http_client: TwilioHttpClient
        if base_url:
            http_client = _RedirectingHttpClient(base_url, timeout=10)
        else:
            http_client = TwilioHttpClient(timeout=10)
        self.client = Client(
            settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http_client
        )

    def send(self, message: SmsMessage) -> SmsResult:
        import requests
        from twilio.base.exceptions import TwilioRestException

        kwargs: dict[str, Any] = {"to": message.to, "body": message.body}
        service = message.messaging_service_sid or settings.TWILIO_MESSAGING_SERVICE_SID
        if service:
            kwargs["messaging_service_sid"] = service
        else:
            kwargs["from_"] = message.from_ or settings.TWILIO_FROM_NUMBER
        if message.status_callback:
            kwargs["status_callback"] = message.status_callback
        try:
            created = self.client.messages.create(**kwargs)
        except TwilioRestException as exc:
            status = exc.status or 0
            raise SmsError(
                f"Twilio answered {status} (code {exc.code}): {exc.msg}",
                code=exc.code,
                retryable=status == 429 or status >= 500,
                permanent=exc.code in self.PERMANENT_CODES,
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            # Never connected (refused, DNS, connect timeout): Twilio did not take it. A
            # connection dropped after the request went out may have been accepted: resending
            # it could text the person twice, so it is uncertain, as a read timeout is.
            if never_connected(exc):
                raise SmsError(f"Could not reach Twilio: {exc}", retryable=True) from exc
            raise SmsError(
                f"The connection to Twilio dropped after the request was sent: {exc}",
                uncertain=True,
            ) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise SmsError(f"Twilio did not answer in time: {exc}", uncertain=True) from exc
        return SmsResult(provider_message_id=str(created.sid), status=str(created.status))


def _redirecting_client_class() -> type:
    from twilio.http.http_client import TwilioHttpClient

    class RedirectingHttpClient(TwilioHttpClient):
        """Sends every request to TWILIO_API_BASE_URL instead of api.twilio.com: tests and
        benchmarks point it at a fake provider on 127.0.0.1."""

        def __init__(self, base_url: str, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            parts = urlsplit(base_url)
            self._scheme, self._netloc = parts.scheme, parts.netloc

        def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            parts = urlsplit(url)
            url = urlunsplit((self._scheme, self._netloc, parts.path, parts.query, ""))
            return super().request(method, url, *args, **kwargs)

    return RedirectingHttpClient


def _RedirectingHttpClient(base_url: str, **kwargs: Any) -> Any:
    return _redirecting_client_class()(base_url, **kwargs)


_BACKENDS = {
    "file": "campaigns.channels.sms.FileSmsBackend",
    "locmem": "campaigns.channels.sms.LocmemSmsBackend",
    "twilio": "campaigns.channels.sms.TwilioSmsBackend",
}


def get_sms_backend() -> BaseSmsBackend:
    name = settings.SMS_BACKEND
    path = _BACKENDS.get(name, name)
    backend_class = import_string(path)
    backend: BaseSmsBackend = backend_class()
    return backend


# --- Building campaign messages ---------------------------------------------------------------

# GSM 03.38: the basic set (one septet each) and the extension table (escape + char: two).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


def _pack(units: list[int], single: int, multi: int) -> int:
    """Segments needed for characters of the given unit sizes: one message holds `single`
    units; a concatenated one `multi` per part, and a character never splits across parts."""
    total = sum(units)
    if total == 0:
        return 0
    if total <= single:
        return 1
    segments, used = 1, 0
    for size in units:
        if used + size > multi:
            segments += 1
            used = 0
        used += size
    return segments


def sms_segments(body: str) -> tuple[str, int, int]:
    """("GSM-7" | "UCS-2", length in encoding units, segments). GSM-7: 160 in one message,
    153 per part when concatenated, extension characters (€ [ ] { } ^ ~ | \\) count 2.
    UCS-2: 70, then 67 per part; characters outside the BMP (emoji) count 2."""
    if all(char in GSM_BASIC or char in GSM_EXTENSION for char in body):
        units = [2 if char in GSM_EXTENSION else 1 for char in body]
        return "GSM-7", sum(units), _pack(units, 160, 153)
    units = [2 if ord(char) > 0xFFFF else 1 for char in body]
    return "UCS-2", sum(units), _pack(units, 70, 67)


# Sentence ends: Latin, ellipsis, CJK full-width and half-width, Arabic, Devanagari, Armenian,
# Ethiopic; closing quotes and brackets may follow them ('"yes."', "(sale!)").
_SENTENCE_END = re.compile(
    r"[.!?\u2026\u3002\uff01\uff1f\uff61\u061f\u06d4\u0964\u0589\u1362]"
    r"[\"'\u2019\u201d\u00bb)\]\u300d\u300f\uff09]*$"
)
# Han, kana, hangul and their punctuation: such a body ends with an ideographic full stop.
_CJK_END = re.compile(r"[\u1100-\u11ff\u2e80-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]$")
_LINK_END = re.compile(r"(?:https?://|www\.)\S*$", re.IGNORECASE)


def sms_with_opt_out(body: str, *, transactional: bool) -> str:
    """The SMS as sent: a marketing body that does not mention STOP gets
    settings.SMS_OPT_OUT_TEXT as a sentence of its own. After sentence punctuation it follows
    a space (none after full-width punctuation); otherwise the body is closed with ". ", or "。"
    after CJK text, or a line break after a link (a full stop would be read as part of the
    URL by some phones)."""
    body = body.strip()
    if transactional or "stop" in body.lower():
        return body
    opt_out = settings.SMS_OPT_OUT_TEXT
    if not body:
        return opt_out
    if _SENTENCE_END.search(body):
        separator = "" if _CJK_END.search(body) else " "
    elif _LINK_END.search(body):
        separator = "\n"
    elif _CJK_END.search(body):
        separator = "\u3002"
    else:
        separator = ". "
    return f"{body}{separator}{opt_out}"


TWILIO_STATUS_CALLBACK_PATH = "/webhooks/twilio/status/"


def build_sms(
    *, delivery: Delivery, campaign: Campaign, contact: Contact, rendered: RenderedMessage
) -> SmsMessage:
    """The SMS for one delivery: sender or Messaging Service from the campaign (settings when
    empty, in the backend), Twilio's status callback, and the delivery id in metadata.
    Marketing SMS always say how to opt out (TCPA, CTIA): settings.SMS_OPT_OUT_TEXT is
    appended when the body does not mention STOP."""
    return SmsMessage(
        to=delivery.to_address or contact.phone or "",
        body=sms_with_opt_out(rendered.sms_body, transactional=campaign.is_transactional),
        from_=campaign.sms_from,
        messaging_service_sid=campaign.messaging_service_sid,
        status_callback=f"{settings.PUBLIC_BASE_URL}{TWILIO_STATUS_CALLBACK_PATH}",
        metadata={"delivery_id": str(delivery.pk), "campaign": campaign.slug},
    )
