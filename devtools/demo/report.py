"""How the scripted run shows what happened: headings, campaign progress, the outbox, one
email's headers and a contact's current consent."""

from __future__ import annotations

import email
from email import policy
from pathlib import Path

from django.conf import settings
from django.core.management.base import OutputWrapper

from campaigns.models import Campaign, Delivery
from campaigns.services.state import campaign_progress
from crm.models import ConsentRecord, Contact


def heading(stdout: OutputWrapper, title: str) -> None:
    stdout.write(f"\n{title}\n{'-' * len(title)}\n")


def outbox_summary(stdout: OutputWrapper) -> None:
    emails = sorted(Path(settings.EMAIL_OUTBOX_DIR).glob("*.eml"))
    sms_file = Path(settings.SMS_OUTBOX_FILE)
    sms = sms_file.read_text(encoding="utf-8").splitlines() if sms_file.exists() else []
    stdout.write(
        f"outbox: {len(emails)} emails in {settings.EMAIL_OUTBOX_DIR}, "
        f"{len(sms)} SMS in {sms_file}\n"
    )


def progress_line(campaign: Campaign) -> str:
    progress = campaign_progress(campaign=campaign)
    statuses = ", ".join(f"{status} {n}" for status, n in progress["by_status"].items())
    reasons = ", ".join(f"{reason} {n}" for reason, n in progress["by_reason"].items())
    return f"{progress['total']} deliveries: {statuses}" + (f" ({reasons})" if reasons else "")


def show_email(stdout: OutputWrapper, delivery: Delivery) -> None:
    for path in Path(settings.EMAIL_OUTBOX_DIR).glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if message.get("X-Cadence-Delivery") == str(delivery.pk):
            stdout.write(f"  {path.name}\n")
            for header in ("To", "Subject", "List-Unsubscribe", "List-Unsubscribe-Post"):
                value = str(message.get(header, ""))
                stdout.write(f"    {header}: {value[:110]}{'…' if len(value) > 110 else ''}\n")
            return


def consent_line(contact: Contact, channel: str) -> str:
    entry = (
        ConsentRecord.objects.filter(contact=contact, channel=channel, purpose="marketing")
        .order_by("-occurred_at", "-id")
        .first()
    )
    return f"{channel} marketing {entry.status} (source {entry.source})" if entry else "none"
