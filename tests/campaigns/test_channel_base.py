"""The channel backend's contract: every failure reaches the send as a ProviderError whose
kind decides the delivery's fate, and what no backend translated is uncertain."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns.channels.base import ChannelBackend, ErrorKind, ProviderError
from campaigns.channels.sms import sms_status_report, twilio_error_kind
from campaigns.models import Delivery
from campaigns.services.launch import campaign_launch
from campaigns.services.send import deliveries_send
from tests.campaigns.dispatch_helpers import campaign_for, deliveries, grant
from tests.factories import ContactFactory

S = Delivery.Status


class _Exploding(ChannelBackend[str]):
    def deliver(self, message: str) -> str:
        raise KeyError(message)


def test_an_exception_no_backend_translated_becomes_an_uncertain_provider_error() -> None:
    with pytest.raises(ProviderError) as caught:
        _Exploding().send("hello", delivery_id=1)
    assert caught.value.uncertain and not caught.value.retryable
    assert str(caught.value).startswith("unexpected: ")


@pytest.mark.django_db
def test_an_unexpected_failure_while_sending_leaves_the_delivery_uncertain_not_resent(
    outbox: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    ada = ContactFactory.create(email="ada@example.com")
    grant(ada)
    campaign = campaign_for([ada])
    campaign_launch(campaign=campaign, enqueue=False)

    def explode(*args: Any, **kwargs: Any) -> str:
        raise RuntimeError("the library broke")

    monkeypatch.setattr("campaigns.channels.email.send_email", explode)
    report = deliveries_send(delivery_ids=[deliveries(campaign)[ada.pk].pk])

    delivery = deliveries(campaign)[ada.pk]
    assert delivery.status == S.UNCERTAIN
    assert delivery.error == "unexpected: the library broke"
    assert report.outcomes["uncertain"] == 1


@pytest.mark.parametrize(
    ("code", "status", "kind"),
    [
        (21610, 400, ErrorKind.OPTED_OUT),
        ("21610", 0, ErrorKind.OPTED_OUT),
        (21211, 400, ErrorKind.PERMANENT),
        (30003, 503, ErrorKind.PERMANENT),
        (20429, 429, ErrorKind.RETRYABLE),
        (None, 500, ErrorKind.RETRYABLE),
        (20003, 401, ErrorKind.FAILED),
        ("", 0, ErrorKind.FAILED),
    ],
)
def test_twilio_codes_are_translated_into_one_kind(
    code: int | str | None, status: int, kind: ErrorKind
) -> None:
    assert twilio_error_kind(code, status=status) == kind


def test_a_status_callback_with_the_carriers_stop_carries_the_opt_out_to_record() -> None:
    report = sms_status_report(message_sid="SM1", status="failed", error_code="21610")
    assert report.opt_out is not None
    assert (report.delivery_status, report.error) == (S.FAILED, "Twilio error 21610")
    assert sms_status_report(message_sid="SM1", status="failed", error_code="30003").opt_out is None
