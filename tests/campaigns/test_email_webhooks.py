"""Email tracking webhooks: anymail's Postmark view, our receiver and the webhooks task."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from django.test import Client, TestCase

from campaigns.models import Delivery, Response
from crm.models import ConsentRecord, Suppression
from crm.normalise import address_hash
from tests.campaigns.consent_helpers import delivery_for, grant, latest, status_of
from tests.factories import ContactFactory
from tests.worker import tasks_eager

pytestmark = pytest.mark.django_db

URL = "/webhooks/anymail/postmark/tracking/"
SECRET = "postmark:hook-password-for-tests"


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any) -> None:
    settings.EMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


def post(event: dict[str, Any], *, auth: str = SECRET) -> Any:
    credentials = base64.b64encode(auth.encode()).decode()
    with tasks_eager(), TestCase.captureOnCommitCallbacks(execute=True):
        return Client().post(
            URL,
            json.dumps(event),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Basic {credentials}",
        )


def delivered(delivery: Delivery, **extra: Any) -> dict[str, Any]:
    return {
        "RecordType": "Delivery",
        "MessageID": delivery.provider_message_id or "pm-unknown",
        "Recipient": delivery.to_address,
        "DeliveredAt": "2026-01-10T10:00:00Z",
        "Details": "250 OK",
        "Metadata": {"delivery_id": str(delivery.pk)},
        **extra,
    }


def bounce(
    address: str, *, kind: str = "HardBounce", event_id: int = 4001, **extra: Any
) -> dict[str, Any]:
    return {
        "RecordType": "Bounce",
        "ID": event_id,
        "Type": kind,
        "Email": address,
        "BouncedAt": "2026-01-10T10:05:00Z",
        "Description": "The server was unable to deliver your message",
        "Details": "550 5.1.1 no such user",
        "MessageID": "pm-1",
        **extra,
    }


def test_a_delivery_event_moves_the_delivery_to_delivered_and_is_recorded() -> None:
    contact = ContactFactory.create()
    delivery = delivery_for(contact, provider_message_id="pm-1")

    response = post(delivered(delivery))

    assert response.status_code == 200
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED
    [row] = Response.objects.all()
    assert (row.kind, row.delivery, row.campaign, row.contact, row.provider) == (
        Response.Kind.DELIVERED,
        delivery,
        delivery.campaign,
        contact,
        "postmark",
    )


def test_the_same_event_sent_three_times_is_recorded_once() -> None:
    contact = ContactFactory.create()
    delivery = delivery_for(contact, provider_message_id="pm-1")

    for _ in range(3):
        assert post(delivered(delivery)).status_code == 200

    assert Response.objects.count() == 1


def test_an_event_is_matched_by_the_provider_message_id_without_metadata() -> None:
    contact = ContactFactory.create()
    delivery = delivery_for(contact, provider_message_id="pm-42")

    post(delivered(delivery, Metadata={}))

    assert Response.objects.get().delivery == delivery


def test_a_click_is_recorded_with_its_url() -> None:
    contact = ContactFactory.create()
    delivery = delivery_for(contact, provider_message_id="pm-7")

    post(
        {
            "RecordType": "Click",
            "MessageID": "pm-7",
            "Recipient": delivery.to_address,
            "ReceivedAt": "2026-01-10T11:00:00Z",
            "OriginalLink": "https://shop.example/p/blue-mug?utm_source=email",
            "Metadata": {"delivery_id": str(delivery.pk)},
        }
    )

    row = Response.objects.get()
    assert (row.kind, row.url) == (
        Response.Kind.CLICKED,
        "https://shop.example/p/blue-mug?utm_source=email",
    )
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.DELIVERED  # a click proves it arrived


def test_a_late_delivery_event_never_moves_a_failed_delivery_back() -> None:
    contact = ContactFactory.create()
    delivery = delivery_for(contact, provider_message_id="pm-1")
    post(bounce(delivery.to_address, Metadata={"delivery_id": str(delivery.pk)}))

    post(delivered(delivery))

    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.FAILED


def test_a_hard_bounce_suppresses_the_address_and_withdraws_email_consent() -> None:
    contact = ContactFactory.create(email="gone@example.com")
    grant(contact)
    grant(contact, purpose="newsletter")
    grant(contact, channel="sms")
    delivery = delivery_for(contact, provider_message_id="pm-1")

    post(bounce("gone@example.com", Metadata={"delivery_id": str(delivery.pk)}))

    assert Response.objects.get().kind == Response.Kind.BOUNCED_HARD
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.reason) == ("email", Suppression.Reason.HARD_BOUNCE)
    assert suppression.address_hash == address_hash("email", "gone@example.com")
    assert status_of(contact) == "withdrawn"
    assert status_of(contact, purpose="newsletter") == "withdrawn"
    assert status_of(contact, channel="sms") == "granted"
    assert latest(contact).source == ConsentRecord.Source.PROVIDER_BOUNCE


def test_a_soft_bounce_is_recorded_and_suppresses_nothing() -> None:
    contact = ContactFactory.create(email="full@example.com")
    grant(contact)
    delivery = delivery_for(contact, provider_message_id="pm-1")

    post(bounce("full@example.com", kind="SoftBounce", Metadata={"delivery_id": str(delivery.pk)}))

    assert Response.objects.get().kind == Response.Kind.BOUNCED_SOFT
    assert not Suppression.objects.exists()
    assert status_of(contact) == "granted"
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT


def test_a_complaint_suppresses_and_withdraws_with_source_provider_complaint() -> None:
    contact = ContactFactory.create(email="angry@example.com")
    grant(contact)
    delivery_for(contact, provider_message_id="pm-9")

    post(
        {
            "RecordType": "SpamComplaint",
            "ID": 777,
            "Type": "SpamComplaint",
            "Email": "angry@example.com",
            "BouncedAt": "2026-01-10T12:00:00Z",
            "MessageID": "pm-9",
        }
    )

    assert Response.objects.get().kind == Response.Kind.COMPLAINED
    assert Suppression.objects.get().reason == Suppression.Reason.COMPLAINT
    assert latest(contact).source == ConsentRecord.Source.PROVIDER_COMPLAINT
    assert status_of(contact) == "withdrawn"


def test_a_bounce_for_mail_sent_outside_campaigns_still_suppresses_the_contact() -> None:
    contact = ContactFactory.create(email="Optin.Person@Example.com")
    grant(contact)

    response = post(bounce("optin.person@example.com", MessageID="not-a-delivery"))

    assert response.status_code == 200
    assert Response.objects.get().contact == contact
    assert Suppression.objects.filter(
        address_hash=address_hash("email", "optin.person@example.com")
    ).exists()
    assert status_of(contact) == "withdrawn"


def test_an_event_for_an_unknown_message_is_logged_not_an_error(caplog: Any) -> None:
    response = post(
        {
            "RecordType": "Open",
            "MessageID": "pm-nobody",
            "Recipient": "nobody@example.com",
            "ReceivedAt": "2026-01-10T11:00:00Z",
        }
    )

    assert response.status_code == 200
    assert "no delivery for message 'pm-nobody'" in caplog.text


def test_a_forged_bounce_without_the_webhook_secret_changes_nothing() -> None:
    contact = ContactFactory.create(email="victim@example.com")
    grant(contact)

    wrong = post(bounce("victim@example.com"), auth="postmark:guess")
    missing = Client().post(
        URL, json.dumps(bounce("victim@example.com")), content_type="application/json"
    )

    assert wrong.status_code == 401 and missing.status_code == 401
    assert not Suppression.objects.exists()
    assert not Response.objects.exists()
    assert status_of(contact) == "granted"


def test_the_event_is_carried_to_the_webhooks_queue(settings: Any) -> None:
    from config.celery import app

    route = app.amqp.router.route({}, "campaigns.webhook_tasks.email_event_record")

    assert route["queue"].name == "webhooks"


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_on_the_webhooks_queue_applies_a_bounce(settings: Any, tmp_path: Any) -> None:
    from tests.worker import celery_worker, wait_for

    contact = ContactFactory.create(email="bounced@example.com")
    grant(contact)
    with tasks_eager(False), celery_worker(tmp_path=tmp_path, queues="webhooks"):
        credentials = base64.b64encode(SECRET.encode()).decode()
        response = Client().post(
            URL,
            json.dumps(bounce("bounced@example.com")),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Basic {credentials}",
        )
        assert response.status_code == 200
        wait_for(lambda: Suppression.objects.exists(), timeout=90, what="the worker to suppress")
    assert status_of(contact) == "withdrawn"
