"""Builders and provider settings shared by the dispatch tests."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from campaigns.models import Campaign, Delivery, MessageTemplate, Variant
from crm.models import Contact
from segments.models import Segment, SegmentMembership
from tests.factories import ConsentFactory
from tests.worker import tasks_eager

_numbers = itertools.count(1)
TWILIO_SID = "AC" + "1" * 32


def segment_of(contacts: Iterable[Contact], *, name: str = "") -> Segment:
    n = next(_numbers)
    segment = Segment.objects.create(name=name or f"Audience {n}", slug=f"audience-{n}")
    SegmentMembership.objects.bulk_create(
        SegmentMembership(segment=segment, contact=contact) for contact in contacts
    )
    return segment


def campaign_for(
    contacts: Iterable[Contact],
    *,
    channel: str = "email",
    weights: Iterable[int] = (1,),
    subject: str = "Hello {{ contact.first_name|default:'there' }}",
    html: str = "<p>Hi {{ contact.first_name|default:'there' }}, new mugs are in.</p>",
    sms: str = "Hi {{ contact.first_name|default:'there' }}, mugs 10% off. Reply STOP to opt out.",
    **fields: Any,
) -> Campaign:
    n = next(_numbers)
    fields.setdefault("status", Campaign.Status.SENDING)
    campaign = Campaign.objects.create(
        name=f"Campaign {n}",
        slug=f"campaign-{n}",
        channel=channel,
        audience=segment_of(contacts),
        **fields,
    )
    for index, weight in enumerate(weights):
        template = MessageTemplate.objects.create(
            name=f"Template {n}-{index}",
            channel=channel,
            subject=subject,
            html_body=html,
            sms_body=sms,
        )
        Variant.objects.create(
            campaign=campaign, name="ABCDEFGH"[index], template=template, weight=weight
        )
    return campaign


def grant(contact: Contact, *, channel: str = "email", purpose: str = "marketing") -> None:
    ConsentFactory.create(contact=contact, channel=channel, purpose=purpose)


def deliveries(campaign: Campaign) -> dict[int, Delivery]:
    """{contact id: delivery} for a campaign's one-off occurrence."""
    return {d.contact_id: d for d in Delivery.objects.filter(campaign=campaign)}


def use_postmark(settings: Any, fake_url: str, *, timeout: float = 5) -> None:
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": "test-server-token",
        "POSTMARK_API_URL": fake_url + "/",
        "REQUESTS_TIMEOUT": timeout,
    }


def use_twilio(settings: Any, fake_url: str) -> None:
    settings.SMS_BACKEND = "twilio"
    settings.TWILIO_ACCOUNT_SID = TWILIO_SID
    settings.TWILIO_AUTH_TOKEN = "test-token"
    settings.TWILIO_FROM_NUMBER = "+14155550999"
    settings.TWILIO_MESSAGING_SERVICE_SID = ""
    settings.TWILIO_API_BASE_URL = fake_url


def provider_env(fake_url: str) -> dict[str, str]:
    """The same providers for a worker process, through its environment."""
    return {
        "EMAIL_BACKEND": "anymail.backends.postmark.EmailBackend",
        "ANYMAIL_POSTMARK_SERVER_TOKEN": "test-server-token",
        "ANYMAIL_POSTMARK_API_URL": fake_url + "/",
        "SMS_BACKEND": "twilio",
        "TWILIO_ACCOUNT_SID": TWILIO_SID,
        "TWILIO_AUTH_TOKEN": "test-token",
        "TWILIO_FROM_NUMBER": "+14155550999",
        "TWILIO_API_BASE_URL": fake_url,
    }


@contextmanager
def tasks_run_inline() -> Iterator[None]:
    """Celery tasks published by the code under test run in this process when published
    (the real tasks and services; only the transport is skipped)."""
    with tasks_eager():
        yield


def emails_to(fake: Any) -> list[str]:
    return [r.json()["To"] for r in fake.requests if r.path == "/email"]


def sms_to(fake: Any) -> list[str]:
    return [r.form()["To"][0] for r in fake.requests if r.path.startswith("/2010-04-01/")]
