"""Chapter 8 of the scripted run: customers are obeyed at once. One unsubscribes with the
link in the email, one address bounces, one person texts STOP, and the next send skips
them, checked at the last moment."""

from __future__ import annotations

import base64
import email
import json
import urllib.parse
from email import policy
from pathlib import Path

from django.conf import settings
from django.core.management.base import OutputWrapper
from django.utils import timezone

from campaigns.channels.provider_events import twilio_signature
from campaigns.models import Campaign, Delivery
from campaigns.services.launch import campaign_launch
from crm.models import Contact, Suppression
from crm.normalise import address_hash
from devtools.demo.report import consent_line, heading, progress_line
from devtools.demo.server import post, wait_idle


def _unsubscribe_by_link(*, stdout: OutputWrapper, base_url: str, delivery: Delivery) -> None:
    """One-click unsubscribe with the List-Unsubscribe URL from the email itself."""
    for path in Path(settings.EMAIL_OUTBOX_DIR).glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if message.get("X-Cadence-Delivery") == str(delivery.pk):
            header = str(message["List-Unsubscribe"])
            url = header.split("<", 1)[1].split(">", 1)[0]
            status = post(
                url.replace(settings.PUBLIC_BASE_URL, base_url),
                b"List-Unsubscribe=One-Click",
                {"Content-Type": "application/x-www-form-urlencoded"},
            )
            stdout.write(
                f"one-click unsubscribe by {delivery.contact.email}: HTTP {status}; "
                f"now {consent_line(delivery.contact, 'email')}\n"
            )


def _bounce_by_webhook(*, stdout: OutputWrapper, base_url: str, delivery: Delivery) -> None:
    """A hard bounce reported by the ESP's webhook (anymail, basic auth)."""
    payload = {
        "RecordType": "Bounce",
        "ID": 900001,
        "Type": "HardBounce",
        "Email": delivery.to_address,
        "BouncedAt": timezone.now().isoformat(),
        "Description": "The server was unable to deliver your message",
        "Details": "550 5.1.1 no such user",
        "MessageID": delivery.provider_message_id,
        "Metadata": {"delivery_id": str(delivery.pk)},
    }
    auth = base64.b64encode(settings.ANYMAIL["WEBHOOK_SECRET"].encode()).decode()
    status = post(
        f"{base_url}/webhooks/anymail/postmark/tracking/",
        json.dumps(payload).encode(),
        {"Content-Type": "application/json", "Authorization": f"Basic {auth}"},
    )
    wait_idle(stdout=stdout)
    suppressed = Suppression.objects.filter(
        channel="email", address_hash=address_hash("email", delivery.to_address)
    ).exists()
    stdout.write(
        f"hard bounce for {delivery.to_address}: HTTP {status}; suppressed: {suppressed}; "
        f"now {consent_line(delivery.contact, 'email')}\n"
    )


def _stop_by_sms(*, stdout: OutputWrapper, base_url: str) -> None:
    """STOP by SMS, signed the way Twilio signs it."""
    texter = (
        Contact.objects.filter(phone__isnull=False, consents__channel="sms").order_by("pk").first()
    )
    if texter is None or not texter.phone:
        return
    params = {
        "From": texter.phone,
        "To": settings.TWILIO_FROM_NUMBER or "+14155550999",
        "Body": " Stop ",
        "MessageSid": "SMdemo0000000000000000000000000001",
    }
    signature = twilio_signature(
        url=f"{settings.PUBLIC_BASE_URL}/webhooks/twilio/inbound/",
        params=params,
        auth_token=settings.TWILIO_AUTH_TOKEN,
    )
    status = post(
        f"{base_url}/webhooks/twilio/inbound/",
        urllib.parse.urlencode(params).encode(),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature,
        },
    )
    now_state = consent_line(texter, "sms")
    stdout.write(f"'Stop' texted from {texter.phone}: HTTP {status}; now {now_state}\n")


def _reminder(*, stdout: OutputWrapper, broadcast: Campaign, sent: list[Delivery]) -> None:
    """The next send skips them, checked at the last moment."""
    campaign_launch(campaign=broadcast, occurrence="reminder")
    wait_idle(stdout=stdout)
    if len(sent) == 2:
        for original in sent:
            reminder = Delivery.objects.get(
                campaign=broadcast, occurrence="reminder", contact=original.contact
            )
            stdout.write(
                f"reminder to {original.contact.email}: {reminder.status}"
                f"{f' ({reminder.reason})' if reminder.reason else ''}\n"
            )
    stdout.write(f"november-picks with its reminder: {progress_line(broadcast)}\n")


def demo_obeyed(*, stdout: OutputWrapper, base_url: str, broadcast: Campaign) -> None:
    heading(stdout, "8. Customers are obeyed at once")
    sent = list(
        Delivery.objects.filter(campaign=broadcast, status=Delivery.Status.SENT)
        .select_related("contact")
        .order_by("pk")[:2]
    )
    if len(sent) == 2:
        unsubscriber, bouncer = sent[0], sent[1]
        _unsubscribe_by_link(stdout=stdout, base_url=base_url, delivery=unsubscriber)
        _bounce_by_webhook(stdout=stdout, base_url=base_url, delivery=bouncer)
    _stop_by_sms(stdout=stdout, base_url=base_url)
    _reminder(stdout=stdout, broadcast=broadcast, sent=sent)
