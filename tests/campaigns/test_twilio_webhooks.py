"""Twilio's inbound SMS and status callbacks, signed as Twilio signs them."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, TestCase
from twilio.request_validator import RequestValidator

from campaigns.models import Delivery, Response
from crm.models import ConsentRecord, ContactAlias, Suppression
from crm.normalise import address_hash
from tests.campaigns.consent_helpers import delivery_for, grant, latest, status_of
from tests.factories import ContactFactory
from tests.worker import tasks_eager

pytestmark = pytest.mark.django_db

TOKEN = "twilio-auth-token-for-tests"
BASE = "https://shop.example"
PHONE = "+14155550123"


@pytest.fixture(autouse=True)
def twilio_settings(settings: Any) -> None:
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.PUBLIC_BASE_URL = BASE
    settings.SMS_HELP_TEXT = "Demo Shop <help>: reply STOP to opt out & more."


def signed_post(path: str, data: dict[str, str], *, token: str = TOKEN) -> Any:
    signature = RequestValidator(token).compute_signature(f"{BASE}{path}", data)
    # Work queued after commit runs here, as a worker would run it.
    with tasks_eager(), TestCase.captureOnCommitCallbacks(execute=True):
        return Client(enforce_csrf_checks=True).post(path, data, HTTP_X_TWILIO_SIGNATURE=signature)


sid_numbers = iter(range(1, 10_000))


def inbound(body: str, *, sid: str | None = None, sender: str = PHONE) -> Any:
    sid = sid or f"SM{next(sid_numbers):032d}"
    return signed_post(
        "/webhooks/twilio/inbound/",
        {"MessageSid": sid, "From": sender, "To": "+15005550006", "Body": body},
    )


def status_callback(sid: str, status: str, **extra: str) -> Any:
    return signed_post(
        "/webhooks/twilio/status/",
        {"MessageSid": sid, "MessageStatus": status, "To": PHONE, **extra},
    )


@pytest.mark.parametrize(
    "body", [" stop ", "Stop", "STOPALL", "unsubscribe", "cancel", "End", "quit"]
)
def test_stop_words_withdraw_sms_consent(body: str) -> None:
    contact = ContactFactory.create(phone=PHONE)
    grant(contact, channel="sms")
    grant(contact, channel="sms", purpose="offers")
    grant(contact, channel="email")

    response = inbound(body)

    assert response.status_code == 200
    assert response.content.decode().endswith("<Response />")
    assert status_of(contact, channel="sms") == "withdrawn"
    assert status_of(contact, channel="sms", purpose="offers") == "withdrawn"
    assert status_of(contact, channel="email") == "granted"
    assert latest(contact).source == ConsentRecord.Source.SMS_KEYWORD


def test_stop_from_a_merged_away_number_reaches_the_surviving_contact() -> None:
    contact = ContactFactory.create(phone="+14155550999")
    ContactAlias.objects.create(contact=contact, kind=ContactAlias.Kind.PHONE, value=PHONE)
    grant(contact, channel="sms")

    inbound("STOP")

    assert status_of(contact, channel="sms") == "withdrawn"


def test_stop_is_recorded_as_an_unsubscribe_from_the_last_sms_sent() -> None:
    contact = ContactFactory.create(phone=PHONE)
    grant(contact, channel="sms")
    delivery = delivery_for(contact, channel="sms", sent_at="2026-01-10T10:00:00Z")

    inbound("STOP")

    [response] = Response.objects.all()
    assert (response.kind, response.delivery, response.campaign) == (
        Response.Kind.UNSUBSCRIBED,
        delivery,
        delivery.campaign,
    )


def test_start_restores_marketing_sms_with_the_message_as_proof() -> None:
    contact = ContactFactory.create(phone=PHONE)
    grant(contact, channel="sms")
    inbound("STOP")

    inbound(" Start", sid="SM" + "7" * 32)

    assert status_of(contact, channel="sms") == "granted"
    entry = latest(contact)
    assert entry.source == ConsentRecord.Source.SMS_KEYWORD
    assert entry.proof["message_sid"] == "SM" + "7" * 32
    assert entry.text == "Start"


def test_help_answers_with_the_help_text_escaped_in_twiml() -> None:
    contact = ContactFactory.create(phone=PHONE)
    grant(contact, channel="sms")

    response = inbound("help")

    assert response["Content-Type"].startswith("application/xml")
    assert (
        "<Response><Message>Demo Shop &lt;help&gt;: reply STOP to opt out &amp; more.</Message>"
        in response.content.decode()
    )
    assert status_of(contact, channel="sms") == "granted"


def test_any_other_reply_is_stored_as_a_response() -> None:
    contact = ContactFactory.create(phone=PHONE)
    grant(contact, channel="sms")

    inbound("stop sending me the blue ones <3")

    [response] = Response.objects.all()
    assert (response.kind, response.body, response.contact) == (
        Response.Kind.REPLIED,
        "stop sending me the blue ones <3",
        contact,
    )
    assert status_of(contact, channel="sms") == "granted"


def test_a_forged_stop_gets_403_and_changes_nothing() -> None:
    contact = ContactFactory.create(phone=PHONE)
    grant(contact, channel="sms")
    data = {"MessageSid": "SM1", "From": PHONE, "Body": "STOP"}

    wrong_key = signed_post("/webhooks/twilio/inbound/", data, token="not-the-token")
    unsigned = Client().post("/webhooks/twilio/inbound/", data)

    assert (wrong_key.status_code, unsigned.status_code) == (403, 403)
    assert status_of(contact, channel="sms") == "granted"
    assert not Response.objects.exists()


def test_a_replayed_start_after_a_later_stop_changes_nothing() -> None:
    contact = ContactFactory.create(phone=PHONE)
    grant(contact, channel="sms")
    inbound("START", sid="SM" + "1" * 32)
    inbound("STOP", sid="SM" + "2" * 32)

    inbound("START", sid="SM" + "1" * 32)

    assert status_of(contact, channel="sms") == "withdrawn"


def test_replaying_the_same_reply_three_times_keeps_one_response() -> None:
    ContactFactory.create(phone=PHONE)

    for _ in range(3):
        assert inbound("Thanks!", sid="SM" + "3" * 32).status_code == 200

    assert Response.objects.count() == 1


# --- Status callbacks -----------------------------------------------------------------------


def test_status_callbacks_move_the_delivery_forward_only() -> None:
    contact = ContactFactory.create(phone=PHONE)
    delivery = delivery_for(contact, channel="sms", provider_message_id="SMabc")

    status_callback("SMabc", "delivered")
    status_callback("SMabc", "sent")  # arrives late
    status_callback("SMabc", "queued")

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED
    assert delivery.delivered_at is not None


def test_an_undelivered_callback_fails_the_delivery_once_however_often_replayed() -> None:
    contact = ContactFactory.create(phone=PHONE)
    delivery = delivery_for(contact, channel="sms", provider_message_id="SMdef")

    for _ in range(3):
        assert status_callback("SMdef", "undelivered", ErrorCode="30003").status_code == 204

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED
    assert "30003" in delivery.error
    assert Response.objects.filter(kind=Response.Kind.FAILED).count() == 1


def test_error_21610_withdraws_sms_consent() -> None:
    contact = ContactFactory.create(phone=PHONE)
    grant(contact, channel="sms")
    delivery_for(contact, channel="sms", provider_message_id="SMstop")

    status_callback("SMstop", "failed", ErrorCode="21610")

    assert status_of(contact, channel="sms") == "withdrawn"
    assert latest(contact).proof["twilio_error"] == "21610"


def test_a_forged_status_callback_gets_403_and_changes_nothing() -> None:
    contact = ContactFactory.create(phone=PHONE)
    delivery = delivery_for(contact, channel="sms", provider_message_id="SMghi")

    response = Client().post(
        "/webhooks/twilio/status/",
        {"MessageSid": "SMghi", "MessageStatus": "failed"},
        HTTP_X_TWILIO_SIGNATURE="bm90IGEgc2lnbmF0dXJl",
    )

    assert response.status_code == 403
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT


def test_a_status_for_an_unknown_message_is_accepted_and_logged(caplog: Any) -> None:
    response = status_callback("SMnobody", "delivered")

    assert response.status_code == 204
    assert "unknown message SMnobody" in caplog.text


def test_without_public_base_url_the_requests_own_url_is_verified(settings: Any) -> None:
    settings.PUBLIC_BASE_URL = ""
    contact = ContactFactory.create(phone=PHONE)
    grant(contact, channel="sms")
    data = {"MessageSid": "SM9", "From": PHONE, "Body": "STOP"}
    signature = RequestValidator(TOKEN).compute_signature(
        "http://testserver/webhooks/twilio/inbound/", data
    )

    response = Client().post("/webhooks/twilio/inbound/", data, HTTP_X_TWILIO_SIGNATURE=signature)

    assert response.status_code == 200
    assert status_of(contact, channel="sms") == "withdrawn"


def test_erasing_a_contact_forgets_the_text_of_their_replies() -> None:
    from crm.services.privacy import contact_erase

    contact = ContactFactory.create(phone=PHONE)
    inbound("My address is 1 Secret Lane")

    with TestCase.captureOnCommitCallbacks(execute=True):
        contact_erase(contact=contact, requested_by="test")

    response = Response.objects.get()
    assert (response.kind, response.body, response.payload) == (Response.Kind.REPLIED, "", {})


def test_start_lifts_a_carrier_stop_suppression_but_no_other() -> None:
    contact = ContactFactory.create(phone=PHONE)
    grant(contact, channel="sms")
    status_callback("SMcarrier", "failed", ErrorCode="21610")
    digest = address_hash("sms", PHONE)
    assert Suppression.objects.get(channel="sms", address_hash=digest).reason == "carrier_stop"

    inbound("START", sid="SM" + "8" * 32)

    assert not Suppression.objects.filter(channel="sms", address_hash=digest).exists()
    Suppression.objects.create(channel="sms", address_hash=digest, reason="invalid")
    inbound("START", sid="SM" + "9" * 32)
    assert Suppression.objects.filter(channel="sms", address_hash=digest).exists()
