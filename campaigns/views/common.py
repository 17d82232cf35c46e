"""What the public consent pages share: who asked (IP, user agent), the one 404 page for every
bad link, rendering in the contact's language, and the words that name topics and channels.

The words a page shows for an action are built here, in Python, so that exactly those words
are what the consent ledger records as the text the person agreed to."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext, gettext_lazy

from campaigns.services.consent_actions import ConsentEvidence
from crm.models import MARKETING, Channel, Contact
from crm.services.optin import mask_email

_TOPIC_LABELS = {
    MARKETING: gettext_lazy("News and offers"),
    "newsletter": gettext_lazy("Newsletter"),
    "offers": gettext_lazy("Special offers"),
}


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: X-Forwarded-For is whatever the client says; the deployment's proxy
    # is expected to set REMOTE_ADDR.
    try:
        return str(ipaddress.ip_address(request.META.get("REMOTE_ADDR", "")))
    except ValueError:
        return None


def evidence(request: HttpRequest, *, source: str, text: str = "", **proof: Any) -> ConsentEvidence:
    return ConsentEvidence(
        source=source,
        text=text,
        text_version=settings.CONSENT_PAGES_TEXT_VERSION,
        ip_address=client_ip(request),
        user_agent=str(request.META.get("HTTP_USER_AGENT", "")),
        proof=proof,
    )


def invalid_link(request: HttpRequest) -> HttpResponse:
    """The one answer to every link we cannot honour (tampered, truncated, expired, for a
    contact that no longer exists): the same page, so a link reveals nothing about why."""
    return render(request, "campaigns/public/invalid_link.html", status=404)


def contact_for(contact_id: int | None) -> Contact | None:
    if contact_id is None:
        return None
    return Contact.objects.filter(pk=contact_id, is_erased=False).first()


def contact_language(request: HttpRequest, contact: Contact) -> str:
    """The contact's own locale when we support it, else what the browser asked for."""
    try:
        return translation.get_supported_language_variant(contact.locale or "").lower()
    except LookupError:
        return getattr(request, "LANGUAGE_CODE", settings.LANGUAGE_CODE)


def in_language(response: HttpResponse, language: str) -> HttpResponse:
    """LocaleMiddleware would label the answer with the browser's language; it was written
    in the contact's."""
    response.headers["Content-Language"] = language
    return response


def mask_phone(phone: str) -> str:
    """•••• 0123: the last digits only."""
    return f"•••• {phone[-4:]}" if len(phone) > 4 else "••••"


def masked_address(contact: Contact, channel: str) -> str:
    if channel == Channel.SMS:
        return mask_phone(contact.phone or "")
    return mask_email(contact.email or "")


def topic_label(purpose: str) -> str:
    label = _TOPIC_LABELS.get(purpose)
    return str(label) if label is not None else purpose.replace("_", " ").capitalize()


def stop_topic_text(*, channel: str, purpose: str) -> str:
    topic = topic_label(purpose)
    if channel == Channel.SMS:
        return gettext("Stop sending me “%(topic)s” text messages.") % {"topic": topic}
    return gettext("Stop sending me “%(topic)s” emails.") % {"topic": topic}


def stop_all_text(*, channel: str) -> str:
    if channel == Channel.SMS:
        return gettext("Stop all marketing text messages.")
    return gettext("Stop all marketing emails.")


def resubscribe_text(*, channel: str, purpose: str) -> str:
    topic = topic_label(purpose)
    if channel == Channel.SMS:
        return gettext("Send me “%(topic)s” text messages again.") % {"topic": topic}
    return gettext("Send me “%(topic)s” emails again.") % {"topic": topic}


def channel_heading(channel: str) -> str:
    return gettext("Text messages") if channel == Channel.SMS else gettext("Email")


def opt_in_text(*, channel: str, purpose: str) -> str:
    topic = topic_label(purpose)
    if channel == Channel.SMS:
        return gettext("Yes, send me “%(topic)s” by text message.") % {"topic": topic}
    return gettext("Yes, send me “%(topic)s” by email.") % {"topic": topic}
