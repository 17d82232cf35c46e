"""Sending a tracked email through the real pipeline to the .eml outbox and reading its links
back, for the tracking tests."""

from __future__ import annotations

import datetime as dt
import email
import re
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.test import Client
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.services.launch import campaign_launch
from campaigns.services.send import deliveries_send
from campaigns.tracking.classify import ClassifyReport, tracking_hits_classify
from crm.models import Contact
from tests.campaigns.dispatch_helpers import campaign_for, grant
from tests.factories import ContactFactory

HTML = (
    "<html><body><p>Hi {{ contact.first_name|default:'there' }},</p>"
    '<p><a href="https://shop.example.com/mugs?colour=blue&amp;size=l">Mugs</a> '
    '<a href="https://shop.example.com/teapots">Teapots</a> '
    '<a href="mailto:help@example.com">Write to us</a> '
    '<a href="tel:+4420123456">Call</a> <a href="#top">Top</a></p>'
    "</body></html>"
)
TRACKED = re.compile(r"https?://[^\s\"'<>()]+/t/c/[^\s\"'<>()]+")
PIXEL = re.compile(r"https?://[^\s\"'<>]+/t/o/[^\s\"'<>]+")


def send_tracked(
    outbox: Path, *, html: str = HTML, contact: Contact | None = None, **fields: Any
) -> tuple[Delivery, Message]:
    """One campaign to one consenting contact, sent; its delivery and the .eml message."""
    contact = contact or ContactFactory.create(first_name="Ada")
    grant(contact, purpose=fields.get("purpose", "marketing"))
    campaign = campaign_for([contact], html=html, **fields)
    campaign_launch(campaign=campaign, enqueue=False)
    delivery = Delivery.objects.get(campaign=campaign)
    deliveries_send(delivery_ids=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == Delivery.Status.SENT, delivery.error
    [path] = [
        p for p in (outbox / "email").glob("*.eml") if str(delivery.to_address) in p.read_text()
    ]
    return delivery, email.message_from_bytes(path.read_bytes())


def parts(message: Message) -> tuple[str, str]:
    """(HTML, text) of a sent message, decoded."""
    found = {"text/html": "", "text/plain": ""}
    for part in message.walk():
        if part.get_content_type() in found and not found[part.get_content_type()]:
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found[part.get_content_type()] = payload.decode(part.get_content_charset() or "utf-8")
    return found["text/html"], found["text/plain"]


def tracked_links(message: Message) -> list[str]:
    """The visible tracked links of the HTML part, in order (the hidden honeypot, the first
    /t/c/ link after <body>, left out)."""
    html, _ = parts(message)
    links = TRACKED.findall(html.replace("&amp;", "&"))
    return links[1:]


def honeypot_link(message: Message) -> str:
    html, _ = parts(message)
    return TRACKED.findall(html)[0]


def path_of(url: str) -> str:
    return urlsplit(url).path


def hit(
    client: Client,
    url: str,
    *,
    ua: str = "Mozilla/5.0 (Macintosh) AppleWebKit/605 Safari/605",
    ip: str = "203.0.113.7",
    method: str = "get",
) -> Any:
    return getattr(client, method)(path_of(url), HTTP_USER_AGENT=ua, REMOTE_ADDR=ip)


def sent_ago(delivery: Delivery, seconds: float) -> None:
    """Pretend the message went out `seconds` ago."""
    Delivery.objects.filter(pk=delivery.pk).update(
        sent_at=timezone.now() - dt.timedelta(seconds=seconds)
    )


def classify() -> ClassifyReport:
    return tracking_hits_classify()


def campaign_of(delivery: Delivery) -> Campaign:
    return Campaign.objects.get(pk=delivery.campaign_id)
