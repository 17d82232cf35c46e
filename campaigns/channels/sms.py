"""SMS backends behind one interface, chosen by settings.SMS_BACKEND:

- ``file`` (default): appends one JSON object per message to SMS_OUTBOX_FILE;
- ``locmem``: keeps messages in ``sms.outbox`` for tests in the same process;
- ``twilio``: the real twilio client (TWILIO_* settings).

Errors are raised as ProviderError (campaigns/channels/base.py): Twilio's answers and
codes are translated into its kinds here, for a send and for a status callback alike, so
that no Twilio code is read anywhere else. `SmsChannel` is the channel backend the send uses.
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

from campaigns.channels.base import ChannelBackend, ErrorKind, OptOut, ProviderError
from campaigns.channels.network import never_connected
from campaigns.models import Delivery
from crm.models import Channel, ConsentRecord, Suppression

if TYPE_CHECKING:
    from campaigns.models import Campaign
    from campaigns.rendering import RenderedMessage
    from crm.models import Contact

# The provider named on Responses and in consent proofs for what Twilio reports.
SMS_PROVIDER = "twilio"
# "Attempt to send to unsubscribed recipient": the person texted STOP to our sender and the
# carrier blocks the number until they text START.
TWILIO_OPTED_OUT = 21610
# Twilio's answers that mean the number can never receive from us.
TWILIO_PERMANENT_CODES = frozenset({21211, 21214, 21612, 21614, 30003, 30005, 30006})
# The person's own "stop everything" on SMS (the source of a STOP keyword), and a suppression
# that a later START lifts, as the carrier's block is lifted: not a dead number.
CARRIER_STOP = OptOut(
    source=ConsentRecord.Source.SMS_KEYWORD,
    text="Twilio error 21610: the recipient replied STOP to the carrier",
    suppression_reason=Suppression.Reason.CARRIER_STOP,
    note="Twilio 21610",
)


def twilio_error_kind(code: int | str | None, *, status: int = 0) -> ErrorKind:
    """What a Twilio error code (and the HTTP status it came with) means for a delivery."""
    try:
        number = int(code) if code not in (None, "") else None
    except (TypeError, ValueError):
        number = None
    if number == TWILIO_OPTED_OUT:
        return ErrorKind.OPTED_OUT
    if number in TWILIO_PERMANENT_CODES:
        return ErrorKind.PERMANENT
    if status == 429 or status >= 500:
        return ErrorKind.RETRYABLE
    return ErrorKind.FAILED


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
            kind = twilio_error_kind(exc.code, status=status)
            raise ProviderError(
                f"Twilio answered {status} (code {exc.code}): {exc.msg}",
                kind=kind,
                code=exc.code,
                provider=SMS_PROVIDER,
                opt_out=CARRIER_STOP if kind == ErrorKind.OPTED_OUT else None,
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            # Never connected (refused, DNS, connect timeout): Twilio did not take it. A
            # connection dropped after the request went out may have been accepted: resending
            # it could text the person twice, so it is uncertain, as a read timeout is.
            if never_connected(exc):
                raise ProviderError(
                    f"Could not reach Twilio: {exc}",
                    kind=ErrorKind.RETRYABLE,
                    provider=SMS_PROVIDER,
                ) from exc
            raise ProviderError(
                f"The connection to Twilio dropped after the request was sent: {exc}",
                kind=ErrorKind.UNCERTAIN,
                provider=SMS_PROVIDER,
            ) from exc
        except requests.exceptions.ReadTimeout as exc:
            raise ProviderError(
                f"Twilio did not answer in time: {exc}",
                kind=ErrorKind.UNCERTAIN,
                provider=SMS_PROVIDER,
            ) from exc
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


class SmsChannel(ChannelBackend[SmsMessage]):
    """SMS through the backend settings.SMS_BACKEND names."""

    channel = Channel.SMS

    def __init__(self) -> None:
        self.backend: BaseSmsBackend | None = None

    def open(self) -> None:
        self.backend = get_sms_backend()

    def build(
        self,
        *,
        delivery: Delivery,
        campaign: Campaign,
        contact: Contact,
        rendered: RenderedMessage,
    ) -> SmsMessage:
        return build_sms(delivery=delivery, campaign=campaign, contact=contact, rendered=rendered)

    def deliver(self, message: SmsMessage) -> str:
        backend = self.backend or get_sms_backend()
        return str(backend.send(message).provider_message_id)


# --- Status callbacks ---------------------------------------------------------------------------

_S = Delivery.Status
# Twilio's MessageStatus values → Delivery status. "queued" at Twilio means Twilio has it,
# which is what "sent" means to us.
TWILIO_STATUS: dict[str, str] = {
    "accepted": _S.SENT,
    "scheduled": _S.SENT,
    "queued": _S.SENT,
    "sending": _S.SENT,
    "sent": _S.SENT,
    "delivered": _S.DELIVERED,
    "read": _S.DELIVERED,
    "undelivered": _S.FAILED,
    "failed": _S.FAILED,
    "canceled": _S.FAILED,
}


@dataclass(frozen=True)
class SmsStatusReport:
    """One Twilio status callback in our terms."""

    event_id: str  # "<MessageSid>:<status>": Twilio resends callbacks, this stays the same
    delivery_status: str | None  # the Delivery status it reports, None for one we ignore
    error: str  # e.g. "Twilio error 30003", "" without an error code
    opt_out: OptOut | None  # the carrier's STOP, to be recorded as the person's withdrawal
    proof: dict[str, Any]  # what the consent ledger keeps as the provider's evidence


def sms_status_report(*, message_sid: str, status: str, error_code: str) -> SmsStatusReport:
    """Read a status callback's MessageSid, MessageStatus and ErrorCode."""
    opted_out = bool(error_code) and twilio_error_kind(error_code) == ErrorKind.OPTED_OUT
    return SmsStatusReport(
        event_id=f"{message_sid}:{status}",
        delivery_status=TWILIO_STATUS.get(status),
        error=f"Twilio error {error_code}" if error_code else "",
        opt_out=CARRIER_STOP if opted_out else None,
        proof={"message_sid": message_sid, "twilio_error": error_code},
    )
