"""What every channel backend shares: one provider error type and the send flow.

The base owns the flow, as anymail's backend base does: a backend is opened once per batch,
builds each message from a rendered template (`build`), hands it to the provider (`deliver`)
and reads the answer. Whatever goes wrong reaches the caller as a ProviderError whose `kind`
decides what happens to the delivery; a backend translates its provider's exceptions and
codes into that kind in its own module, so no provider code is read outside this package.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from campaigns.models import Campaign, Delivery
    from campaigns.rendering import RenderedMessage
    from crm.models import Contact

logger = logging.getLogger(__name__)

Message = TypeVar("Message")


class ErrorKind(StrEnum):
    # The provider certainly did not take the message: safe to send again.
    RETRYABLE = "retryable"
    # The request went out and no answer came back: it may have been taken, so it is
    # reconciled by a person, never resent blindly.
    UNCERTAIN = "uncertain"
    # The address can never receive (invalid, inactive): suppressed.
    PERMANENT = "permanent"
    # The person stopped our messages at the provider or the carrier: their own withdrawal.
    OPTED_OUT = "opted_out"
    # Refused for a reason a person must fix (a bad token, a malformed sender).
    FAILED = "failed"


@dataclass(frozen=True)
class OptOut:
    """How a provider's opt-out is written down: the ledger source and words of the
    withdrawal, and the reason and note of the suppression row."""

    source: str  # a ConsentRecord.Source, e.g. "sms_keyword"
    text: str
    suppression_reason: str  # a Suppression.Reason, e.g. "carrier_stop"
    note: str


class ProviderError(Exception):
    """The one error every backend raises; `kind` says what it means for the delivery."""

    def __init__(
        self,
        message: str,
        *,
        kind: ErrorKind = ErrorKind.FAILED,
        code: str | int | None = None,
        provider: str = "",
        opt_out: OptOut | None = None,
    ) -> None:
        super().__init__(message)
        if kind == ErrorKind.OPTED_OUT and opt_out is None:
            raise ValueError("an opted_out ProviderError needs the OptOut to record")
        self.kind = kind
        self.code = code
        self.provider = provider
        self.opt_out = opt_out

    @property
    def retryable(self) -> bool:
        return self.kind == ErrorKind.RETRYABLE

    @property
    def uncertain(self) -> bool:
        return self.kind == ErrorKind.UNCERTAIN

    @property
    def permanent(self) -> bool:
        return self.kind == ErrorKind.PERMANENT

    @property
    def opted_out(self) -> bool:
        return self.kind == ErrorKind.OPTED_OUT


class ChannelBackend(Generic[Message]):
    """Sending on one channel, opened once per batch. Subclasses fill `build` and `deliver`
    (and `open` / `close` when they hold a connection)."""

    channel: str = ""

    def open(self) -> None:
        """Acquire what a batch of sends shares (a connection); nothing by default."""

    def close(self) -> None:
        """Release what `open` acquired."""

    def build(
        self,
        *,
        delivery: Delivery,
        campaign: Campaign,
        contact: Contact,
        rendered: RenderedMessage,
    ) -> Message:
        raise NotImplementedError

    def deliver(self, message: Message) -> str:
        """Hand one message to the provider; return its message id. Raises ProviderError for
        every answer the provider gives that is not an acceptance."""
        raise NotImplementedError

    def send(self, message: Message, *, delivery_id: int) -> str:
        """`deliver`, with anything it did not translate made uncertain: an exception no
        backend expected says nothing about whether the message went out."""
        try:
            return self.deliver(message)
        except ProviderError:
            raise
        except Exception as exc:
            logger.exception("sending delivery %s failed unexpectedly", delivery_id)
            raise ProviderError(f"unexpected: {exc}", kind=ErrorKind.UNCERTAIN) from exc


def channel_backend(channel: str) -> ChannelBackend[Any]:
    """The backend for a campaign's channel ("email" or "sms")."""
    # Imported here: each backend module imports this one for the base class.
    from campaigns.channels.email import EmailChannel
    from campaigns.channels.sms import SmsChannel

    backends: dict[str, type[ChannelBackend[Any]]] = {
        EmailChannel.channel: EmailChannel,
        SmsChannel.channel: SmsChannel,
    }
    return backends[channel]()
