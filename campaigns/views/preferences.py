"""The preference centre: consent per channel and topic, and a pause from all marketing for
a few weeks. A CSRF-protected form; the signed link is the only way in."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from campaigns.services.consent_actions import PAUSE_WEEKS, consent_topics, preferences_save
from campaigns.tokens import preferences_contact_id
from campaigns.views import common
from crm.models import Channel, ConsentRecord, Contact
from crm.selectors import consent_current


def _channels(contact: Contact) -> list[str]:
    """Only the channels we can reach the contact on."""
    return [
        channel
        for channel, address in ((Channel.EMAIL, contact.email), (Channel.SMS, contact.phone))
        if address
    ]


def _rows(contact: Contact) -> list[dict[str, Any]]:
    current = consent_current([contact.pk])[contact.pk]
    rows = []
    for channel in _channels(contact):
        topics = [
            {
                "field": f"{channel}:{purpose}",
                "id": f"consent-{channel}-{purpose}",
                "text": common.opt_in_text(channel=channel, purpose=purpose),
                "checked": current.get((channel, purpose)) == ConsentRecord.Status.GRANTED,
            }
            for purpose in consent_topics()
        ]
        rows.append(
            {
                "channel": channel,
                "heading": common.channel_heading(channel),
                "masked_address": common.masked_address(contact, channel),
                "topics": topics,
            }
        )
    return rows


def _pause_choices() -> list[dict[str, str]]:
    choices = [{"value": "", "label": gettext("No change")}]
    for weeks in PAUSE_WEEKS:
        label = translation.ngettext(
            "Pause all marketing for %(weeks)d week",
            "Pause all marketing for %(weeks)d weeks",
            weeks,
        ) % {"weeks": weeks}
        choices.append({"value": str(weeks), "label": label})
    choices.append({"value": "0", "label": gettext("Resume now (end a pause)")})
    return choices


def _pause_weeks(raw: str) -> tuple[int | None, bool]:
    """(weeks or None for no change, whether the value was acceptable)."""
    if raw == "":
        return None, True
    if raw.isdigit() and (int(raw) == 0 or int(raw) in PAUSE_WEEKS):
        return int(raw), True
    return None, False


@never_cache
@require_http_methods(["GET", "POST"])
def preferences(request: HttpRequest, token: str) -> HttpResponse:
    contact = common.contact_for(preferences_contact_id(token))
    if contact is None:
        return common.invalid_link(request)
    language = common.contact_language(request, contact)
    with translation.override(language):
        rows = _rows(contact)
        error = ""
        status = 200
        if request.method == "POST":
            pause_weeks, pause_ok = _pause_weeks(request.POST.get("pause", ""))
            if pause_ok:
                wanted = {
                    (row["channel"], topic["field"].split(":", 1)[1]): topic["field"]
                    in request.POST
                    for row in rows
                    for topic in row["topics"]
                }
                texts = {
                    (row["channel"], topic["field"].split(":", 1)[1]): topic["text"]
                    for row in rows
                    for topic in row["topics"]
                }
                preferences_save(
                    contact=contact,
                    wanted=wanted,
                    texts=texts,
                    pause_weeks=pause_weeks,
                    evidence=common.evidence(
                        request, source=ConsentRecord.Source.PREFERENCE_CENTER
                    ),
                )
                url = reverse("campaigns:preferences", args=[token])
                return HttpResponseRedirect(f"{url}?saved=1")
            error = gettext("Choose a pause of 1, 2, 4 or 8 weeks.")
            status = 400
        paused_until = contact.marketing_paused_until
        page = render(
            request,
            "campaigns/public/preferences.html",
            {
                "first_name": contact.first_name,
                "rows": rows,
                "pause_choices": _pause_choices(),
                "paused_until": paused_until
                if paused_until and paused_until > timezone.now()
                else None,
                "saved": request.method == "GET" and request.GET.get("saved") == "1",
                "error": error,
            },
            status=status,
        )
    return common.in_language(page, language)
