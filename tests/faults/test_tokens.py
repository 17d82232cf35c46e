"""Random and tampered customer-link tokens and forged webhook signatures: none accepted,
and every bad token gets the very same answer."""

from __future__ import annotations

import base64
import json
import random
import string
from typing import Any

import pytest
from django.test import Client

from campaigns.models import Response
from campaigns.tokens import preferences_url, unsubscribe_url
from crm.models import ConsentRecord
from tests.campaigns.consent_helpers import delivery_for, grant
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db
ALPHABET = string.ascii_letters + string.digits + "-_:."


def _bad_tokens(good: list[str], count: int, rng: random.Random) -> list[str]:
    tokens: list[str] = []
    while len(tokens) < count:
        base = rng.choice(good)
        kind = len(tokens) % 4
        if kind == 0:  # random
            token = "".join(rng.choices(ALPHABET, k=rng.randint(1, 120)))
        elif kind == 1:  # one character changed
            i = rng.randrange(len(base))
            token = base[:i] + rng.choice([c for c in ALPHABET if c != base[i]]) + base[i + 1 :]
        elif kind == 2:  # truncated or extended
            token = base[: rng.randrange(1, len(base))] if rng.random() < 0.5 else base + "x"
        else:  # another token's signature on this payload
            other = rng.choice(good)
            token = base.rsplit(":", 1)[0] + ":" + other.rsplit(":", 1)[-1]
        if token not in good and "/" not in token:
            tokens.append(token)
    return tokens


def _token(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[1]


def _check(count: int) -> None:
    contacts = [ContactFactory.create() for _ in range(5)]
    for contact in contacts:
        grant(contact)
    good = [
        _token(unsubscribe_url(contact_id=c.pk, channel="email", purpose="marketing"))
        for c in contacts
    ] + [_token(preferences_url(contact_id=c.pk)) for c in contacts]
    rng = random.Random(count)
    client = Client()
    answers: set[tuple[int, bytes]] = set()
    for n, token in enumerate(_bad_tokens(good, count, rng)):
        if n % 3 == 0:
            answer = client.get(f"/u/{token}/")
        elif n % 3 == 1:
            answer = client.post(f"/u/{token}/one-click/", {"List-Unsubscribe": "One-Click"})
        else:
            answer = client.get(f"/preferences/{token}/")
        answers.add((answer.status_code, answer.content))
    print(
        f"{count} random or tampered tokens: {len(answers)} distinct answer(s) "
        f"{sorted({status for status, _ in answers})}, "
        f"{ConsentRecord.objects.exclude(status='granted').count()} accepted"
    )
    assert {status for status, _ in answers} == {404}
    assert len(answers) == 1
    assert ConsentRecord.objects.exclude(status="granted").count() == 0


def test_2000_random_or_tampered_tokens_0_accepted_one_answer() -> None:
    _check(2_000)


@pytest.mark.slow
def test_100000_random_or_tampered_tokens_0_accepted_one_answer() -> None:
    _check(100_000)


def test_forged_webhook_signatures_are_refused_and_change_nothing(settings: Any) -> None:
    settings.EMAIL_ESP = "postmark"
    settings.ANYMAIL = {"WEBHOOK_SECRET": "postmark:the-real-password"}
    settings.TWILIO_AUTH_TOKEN = "the-real-twilio-token"
    settings.PUBLIC_BASE_URL = "https://shop.example"
    contact = ContactFactory.create(phone="+14155550123")
    grant(contact)
    grant(contact, channel="sms")
    delivery = delivery_for(contact, provider_message_id="pm-1")
    bounce = {
        "RecordType": "Bounce",
        "ID": 1,
        "Type": "HardBounce",
        "Email": contact.email,
        "BouncedAt": "2026-01-10T10:05:00Z",
        "Description": "x",
        "Details": "550",
        "MessageID": "pm-1",
        "Metadata": {"delivery_id": str(delivery.pk)},
    }
    client = Client()
    rng = random.Random(3)
    codes = set()
    for n in range(200):
        forged = "postmark:" + "".join(rng.choices(ALPHABET, k=rng.randint(0, 30)))
        auth = base64.b64encode(forged.encode()).decode()
        codes.add(
            client.post(
                "/webhooks/anymail/postmark/tracking/",
                json.dumps(bounce),
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Basic {auth}",
            ).status_code
        )
        signature = base64.b64encode(rng.randbytes(20)).decode() if n % 2 else ""
        codes.add(
            client.post(
                "/webhooks/twilio/inbound/",
                {
                    "MessageSid": f"SM{n:032d}",
                    "From": contact.phone,
                    "To": "+15005550006",
                    "Body": "STOP",
                },
                HTTP_X_TWILIO_SIGNATURE=signature,
            ).status_code
        )
    print(
        f"400 forged webhook requests: answers {sorted(codes)}, "
        f"{Response.objects.count()} responses recorded"
    )
    assert codes <= {401, 403}  # a wrong password 401, a bad Twilio signature 403
    assert Response.objects.count() == 0
    assert ConsentRecord.objects.exclude(status="granted").count() == 0
