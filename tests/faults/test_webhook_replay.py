"""Provider webhooks replayed 3 and 46 times and out of order end in the same state as each
delivered once in order, with no duplicate rows."""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import pytest
from django.test import Client, TestCase

from campaigns.models import Delivery, Response
from crm.models import ConsentRecord, Suppression
from tests.campaigns.consent_helpers import delivery_for, grant
from tests.factories import ContactFactory
from tests.worker import tasks_eager

pytestmark = pytest.mark.django_db

URL = "/webhooks/anymail/postmark/tracking/"
SECRET = "postmark:hook-password-for-tests"


@pytest.fixture(autouse=True)
def webhook_settings(settings: Any) -> None:
    settings.EMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": SECRET}


def post(event: dict[str, Any]) -> int:
    credentials = base64.b64encode(SECRET.encode()).decode()
    with tasks_eager(), TestCase.captureOnCommitCallbacks(execute=True):
        return (
            Client()
            .post(
                URL,
                json.dumps(event),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Basic {credentials}",
            )
            .status_code
        )


def events_for(delivery: Delivery, n: int) -> list[dict[str, Any]]:
    meta = {"delivery_id": str(delivery.pk)}
    mid = delivery.provider_message_id
    common = {"MessageID": mid, "Metadata": meta}
    events: list[dict[str, Any]] = [
        {
            "RecordType": "Delivery",
            "Recipient": delivery.to_address,
            "DeliveredAt": "2026-01-10T10:00:00Z",
            "Details": "250 OK",
            **common,
        },
        {
            "RecordType": "Open",
            "ID": 7000 + n,
            "Recipient": delivery.to_address,
            "ReceivedAt": "2026-01-10T10:30:00Z",
            "FirstOpen": True,
            **common,
        },
        {
            "RecordType": "Click",
            "ID": 8000 + n,
            "Recipient": delivery.to_address,
            "ReceivedAt": "2026-01-10T11:00:00Z",
            "OriginalLink": f"https://shop.example/p/{n}",
            **common,
        },
    ]
    if n % 2:
        events.append(
            {
                "RecordType": "Bounce",
                "ID": 9000 + n,
                "Type": "HardBounce",
                "Email": delivery.to_address,
                "BouncedAt": "2026-01-10T10:05:00Z",
                "Description": "no such user",
                "Details": "550 5.1.1",
                **common,
            }
        )
    return events


def state() -> tuple[Any, ...]:
    return (
        sorted(Delivery.objects.values_list("pk", "status")),
        sorted(Response.objects.values_list("delivery_id", "kind", "url")),
        sorted(ConsentRecord.objects.values_list("contact_id", "channel", "status")),
        sorted(Suppression.objects.values_list("channel", "address_hash")),
    )


def scenario() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for n in range(4):
        contact = ContactFactory.create(email=f"replay{n}@example.com")
        grant(contact)
        delivery = delivery_for(contact, provider_message_id=f"pm-replay-{n}")
        events.extend(events_for(delivery, n))
    return events


@pytest.mark.parametrize("times", [3, 46])
def test_every_webhook_replayed_n_times_out_of_order_gives_the_same_state(times: int) -> None:
    events = scenario()
    snapshot_before = state()
    for event in events:
        assert post(event) == 200
    once = state()
    rows_once = Response.objects.count()
    replays = events * times
    random.Random(times).shuffle(replays)
    for event in replays:
        assert post(event) == 200
    print(
        f"{len(events)} events replayed {times} times out of order: "
        f"{Response.objects.count() - rows_once} extra response rows"
    )
    assert state() == once
    assert once != snapshot_before
