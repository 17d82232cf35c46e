"""Builders for the A/B tests: campaigns with variants and a holdout, deliveries in a given
state, responses and goal events at given times."""

from __future__ import annotations

import datetime as dt
import itertools
from decimal import Decimal
from typing import Any

from campaigns.models import Campaign, Delivery, MessageTemplate, Response, Variant
from crm.models import Contact, Event
from tests.factories import ContactFactory

T0 = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
_numbers = itertools.count(1)


def ab_campaign(
    *, variants: tuple[str, ...] = ("A", "B"), holdout: int = 0, **fields: Any
) -> Campaign:
    n = next(_numbers)
    fields.setdefault("status", Campaign.Status.SENDING)
    campaign = Campaign.objects.create(
        name=f"Spring test {n}",
        slug=f"spring-test-{n}",
        channel="email",
        holdout_percent=holdout,
        goal_event="order_completed",
        attribution_window_days=5,
        **fields,
    )
    for name in variants:
        template = MessageTemplate.objects.create(
            name=f"t{n}{name}", channel="email", subject=f"Subject {name}", html_body="<p>Hi</p>"
        )
        Variant.objects.create(campaign=campaign, name=name, template=template, weight=1)
    return campaign


def variant(campaign: Campaign, name: str) -> Variant:
    return Variant.objects.get(campaign=campaign, name=name)


def deliver(
    campaign: Campaign,
    arm: str,
    *,
    contact: Contact | None = None,
    sent_at: dt.datetime | None = T0,
    created_at: dt.datetime = T0,
    delivered: bool = False,
    occurrence: str = "",
    status: str | None = None,
) -> Delivery:
    """A delivery in arm "holdout" or a variant's name; holdout rows are never sent."""
    contact = contact or ContactFactory.create()
    holdout = arm == "holdout"
    if holdout:
        sent_at = None
    return Delivery.objects.create(
        campaign=campaign,
        variant=None if holdout else variant(campaign, arm),
        contact=contact,
        occurrence=occurrence,
        channel=campaign.channel,
        is_holdout=holdout,
        status=status
        or (
            Delivery.Status.SKIPPED
            if holdout
            else Delivery.Status.DELIVERED
            if delivered
            else Delivery.Status.SENT
            if sent_at
            else Delivery.Status.SKIPPED
        ),
        reason=Delivery.Reason.HOLDOUT if holdout else "",
        created_at=created_at,
        sent_at=sent_at,
        delivered_at=sent_at if delivered else None,
    )


def respond(delivery: Delivery, kind: str, *, at: dt.datetime = T0) -> Response:
    return Response.objects.create(
        delivery=delivery,
        contact_id=delivery.contact_id,
        campaign_id=delivery.campaign_id,
        kind=kind,
        provider="postmark",
        occurred_at=at,
    )


def convert(contact: Contact | int, *, at: dt.datetime, value: str = "10.00") -> Event:
    contact_id = contact if isinstance(contact, int) else contact.pk
    return Event.objects.create(
        contact_id=contact_id,
        type="order_completed",
        occurred_at=at,
        value=Decimal(value),
        currency="EUR",
    )


def bulk_arm(
    campaign: Campaign,
    arm: str,
    *,
    count: int,
    converted: int,
    clicked: int = 0,
    sent_at: dt.datetime = T0,
) -> None:
    """`count` deliveries in one arm, `converted` of them with a goal event a day later and
    `clicked` with a click: fast fixtures for decisions (bulk inserts)."""
    contacts = Contact.objects.bulk_create(
        Contact(email=f"bulk-{next(_numbers)}@example.com", first_name="Bulk") for _ in range(count)
    )
    holdout = arm == "holdout"
    the_variant = None if holdout else variant(campaign, arm)
    rows = Delivery.objects.bulk_create(
        Delivery(
            campaign=campaign,
            variant=the_variant,
            contact=contact,
            channel=campaign.channel,
            is_holdout=holdout,
            status=Delivery.Status.SKIPPED if holdout else Delivery.Status.SENT,
            reason=Delivery.Reason.HOLDOUT if holdout else "",
            created_at=sent_at,
            sent_at=None if holdout else sent_at,
        )
        for contact in contacts
    )
    Event.objects.bulk_create(
        Event(
            contact=contact,
            type="order_completed",
            occurred_at=sent_at + dt.timedelta(days=1),
            value=Decimal("20.00"),
        )
        for contact in contacts[:converted]
    )
    Response.objects.bulk_create(
        Response(
            delivery=row,
            contact_id=row.contact_id,
            campaign=campaign,
            kind=Response.Kind.CLICKED,
            occurred_at=sent_at,
        )
        for row in rows[:clicked]
    )
