"""Small builders shared by the consent-page and webhook tests."""

from __future__ import annotations

import itertools
from typing import Any

from campaigns.models import Campaign, Delivery
from crm.models import ConsentRecord, Contact
from crm.selectors import consent_current
from tests.campaigns.dispatch_helpers import grant as grant

_numbers = itertools.count(1)


def delivery_for(contact: Contact, *, channel: str = "email", **fields: Any) -> Delivery:
    n = next(_numbers)
    campaign = Campaign.objects.create(name=f"Spring sale {n}", slug=f"spring-{n}", channel=channel)
    fields.setdefault("status", Delivery.Status.SENT)
    fields.setdefault("to_address", contact.email if channel == "email" else contact.phone or "")
    return Delivery.objects.create(campaign=campaign, contact=contact, channel=channel, **fields)


def status_of(contact: Contact, *, channel: str = "email", purpose: str = "marketing") -> str:
    return consent_current([contact.pk])[contact.pk].get((channel, purpose), "none")


def latest(contact: Contact) -> ConsentRecord:
    return ConsentRecord.objects.filter(contact=contact).order_by("-occurred_at", "-id")[0]
