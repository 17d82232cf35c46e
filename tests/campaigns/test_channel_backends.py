"""The default outboxes under var/ and the real twilio client against a fake provider."""

from __future__ import annotations

import email
import json
from email import policy
from pathlib import Path
from typing import Any

import pytest
from django.core.mail import EmailMultiAlternatives

from campaigns.channels.base import ProviderError
from campaigns.channels.sms import SmsMessage, get_sms_backend


def test_each_email_becomes_one_eml_file_a_mail_program_can_open(outbox: Path) -> None:
    message = EmailMultiAlternatives(
        subject="Your cart misses you, Zoë",
        body="Plain text body",
        from_email="Shop <hello@example.com>",
        to=["zoe@example.com"],
        headers={"List-Unsubscribe": "<https://shop.example/u/abc>"},
    )
    message.attach_alternative("<p>HTML body</p>", "text/html")
    assert message.send() == 1
    files = list((outbox / "email").glob("*.eml"))
    assert len(files) == 1
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Your cart misses you, Zoë"
    assert parsed["To"] == "zoe@example.com"
    assert parsed["List-Unsubscribe"] == "<https://shop.example/u/abc>"
    html = parsed.get_body(preferencelist=("html",))
    assert html is not None and "<p>HTML body</p>" in html.get_content()


def test_each_sms_is_one_json_line_in_the_outbox_file(outbox: Path) -> None:
    backend = get_sms_backend()
    backend.send(SmsMessage(to="+14155550100", body="Hi Ada", from_="+14155550999"))
    backend.send(SmsMessage(to="+8613800138000", body="你好", from_="+14155550999"))
    lines = (outbox / "sms.jsonl").read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [(r["to"], r["from"], r["body"]) for r in records] == [
        ("+14155550100", "+14155550999", "Hi Ada"),
        ("+8613800138000", "+14155550999", "你好"),
    ]
    assert all(r["id"].startswith("SM") for r in records)


@pytest.fixture
def twilio_settings(settings: Any, fake_provider: Any) -> Any:
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = "test-token"
    settings.TWILIO_FROM_NUMBER = "+14155550999"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_API_BASE_URL = fake_provider.url
    return settings


def test_the_real_twilio_client_sends_to_the_provider(
    twilio_settings: Any, fake_provider: Any
) -> None:
    result = get_sms_backend().send(
        SmsMessage(to="+14155550100", body="Hello", status_callback="https://x.example/s/")
    )
    assert result.provider_message_id.startswith("SM")
    [request] = fake_provider.requests
    assert request.path == f"/2010-04-01/Accounts/{'AC' + '0' * 32}/Messages.json"
    form = request.form()
    assert form["To"] == ["+14155550100"]
    assert form["From"] == ["+14155550999"]
    assert form["StatusCallback"] == ["https://x.example/s/"]
    assert request.headers["Authorization"].startswith("Basic ")


def test_a_provider_5xx_is_a_retryable_error(twilio_settings: Any, fake_provider: Any) -> None:
    fake_provider.behaviour.script = [503]
    with pytest.raises(ProviderError) as caught:
        get_sms_backend().send(SmsMessage(to="+14155550100", body="Hello"))
    assert caught.value.retryable and not caught.value.permanent


def test_a_429_is_a_retryable_error(twilio_settings: Any, fake_provider: Any) -> None:
    fake_provider.behaviour.script = [429]
    with pytest.raises(ProviderError) as caught:
        get_sms_backend().send(SmsMessage(to="+14155550100", body="Hello"))
    assert caught.value.retryable


def test_a_connection_dropped_after_sending_is_uncertain_not_retried(
    twilio_settings: Any, fake_provider: Any
) -> None:
    fake_provider.behaviour.script = ["drop"]
    with pytest.raises(ProviderError) as caught:
        get_sms_backend().send(SmsMessage(to="+14155550100", body="Hello"))
    assert caught.value.uncertain and not caught.value.retryable


def test_a_refused_connection_is_retryable(twilio_settings: Any) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    twilio_settings.TWILIO_API_BASE_URL = f"http://127.0.0.1:{closed_port}"
    with pytest.raises(ProviderError) as caught:
        get_sms_backend().send(SmsMessage(to="+14155550100", body="Hello"))
    assert caught.value.retryable and not caught.value.uncertain
