"""Checking a template when it is saved: every field compiled and rendered for a few sample
contacts, so that one bad field does not hide another."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from campaigns.models import Campaign, MessageTemplate
from campaigns.rendering.context import message_context, recent_context_for
from campaigns.rendering.render import FIELD_LABELS, RenderError, render_field
from crm.models import Channel, Contact

SAMPLE_CONTACTS = 3


def _sample_contacts() -> list[Contact]:
    real = list(Contact.objects.filter(is_erased=False).order_by("-id")[:SAMPLE_CONTACTS])
    if real:
        return real
    return [
        Contact(
            id=0,
            first_name="Ada",
            last_name="Lovelace",
            email="ada@example.com",
            phone="+14155550123",
            locale="en-GB",
            timezone="Europe/London",
            country="GB",
            attributes={"plan": "pro", "loyalty_points": 120},
        )
    ]


def _sample_recent() -> dict[str, Any]:
    return {
        "last_viewed": {"product_id": "SKU-1", "product_name": "Blue mug"},
        "last_order": {"value": "42.50", "currency": "EUR", "order_id": "A-1"},
    }


def _fields_for(template: MessageTemplate) -> Iterable[tuple[str, bool]]:
    if template.channel == Channel.SMS:
        yield "sms_body", False
    else:
        yield from (
            ("subject", False),
            ("preheader", False),
            ("html_body", True),
            ("text_body", False),
        )


def template_errors(
    template: MessageTemplate, *, contacts: Sequence[Contact] | None = None
) -> dict[str, list[str]]:
    """Errors by model field name. Each field is compiled and rendered for a few sample
    contacts (the newest real ones, else a built-in sample), so that one bad field does not
    hide another."""
    errors: dict[str, list[str]] = {}

    def add(field: str, message: str) -> None:
        if message not in errors.setdefault(field, []):
            errors[field].append(message)

    if template.channel == Channel.SMS:
        if not template.sms_body.strip():
            add("sms_body", "an SMS template needs an SMS body")
    else:
        if not template.subject.strip():
            add("subject", "an email template needs a subject")
        if not (template.html_body.strip() or template.text_body.strip()):
            add("html_body", "an email template needs an HTML body or a text body")

    samples = list(contacts) if contacts is not None else _sample_contacts()
    recent_by_id = recent_context_for([c.pk for c in samples if c.pk])
    campaign = Campaign(name="Sample campaign", slug="sample", channel=template.channel)
    for field, html in _fields_for(template):
        source = getattr(template, field)
        for contact in samples:
            recent = recent_by_id.get(contact.pk) or _sample_recent()
            context = message_context(
                contact=contact, campaign=campaign, delivery_id=None, recent=recent, preview=True
            )
            try:
                # A sample contact may lack a value a link needs: at send that holds the
                # message for that contact, it does not make the template wrong.
                render_field(field, source, context, html=html, hold_missing=False)
            except RenderError as exc:
                add(field, exc.problem)
                break
    return errors


def template_validate(template: MessageTemplate) -> list[str]:
    """Every problem as "<field label>: <problem>"; empty when the template is fine."""
    return [
        f"{FIELD_LABELS.get(field, field)}: {message}"
        for field, messages in template_errors(template).items()
        for message in messages
    ]
