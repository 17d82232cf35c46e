"""The unsubscribe page (GET shows a choice and changes nothing, because mail scanners follow
links; POST acts) and the RFC 8058 one-click endpoint named in List-Unsubscribe (a POST
without cookies or CSRF token, answered 200 without a redirect)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import translation
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from campaigns.services.consent_actions import (
    Scope,
    contact_consent_grant,
    unsubscribe_apply,
)
from campaigns.tokens import UnsubscribePayload, preferences_token, unsubscribe_payload
from campaigns.views import common
from crm.models import Channel, ConsentRecord, Contact

ONE_CLICK_BODY = "One-Click"


def _resolve(token: str) -> tuple[UnsubscribePayload, Contact] | None:
    payload = unsubscribe_payload(token)
    if payload is None:
        return None
    contact = common.contact_for(payload["c"])
    return (payload, contact) if contact is not None else None


def _context(token: str, payload: UnsubscribePayload, contact: Contact) -> dict[str, Any]:
    channel, purpose = payload["ch"], payload["p"]
    return {
        "token": token,
        "first_name": contact.first_name,
        "masked_address": common.masked_address(contact, channel),
        "topic": common.topic_label(purpose),
        "stop_topic_text": common.stop_topic_text(channel=channel, purpose=purpose),
        "stop_all_text": common.stop_all_text(channel=channel),
        "resubscribe_text": common.resubscribe_text(channel=channel, purpose=purpose),
        "is_sms": channel == Channel.SMS,
        "preferences_path": reverse(
            "campaigns:preferences", args=[preferences_token(contact_id=contact.pk)]
        ),
    }


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def unsubscribe(request: HttpRequest, token: str) -> HttpResponse:
    resolved = _resolve(token)
    if resolved is None:
        return common.invalid_link(request)
    payload, contact = resolved
    language = common.contact_language(request, contact)
    with translation.override(language):
        context = _context(token, payload, contact)
        if request.method in ("GET", "HEAD"):
            page = render(request, "campaigns/public/unsubscribe_confirm.html", context)
            return common.in_language(page, language)
        if request.POST.get("action") == "resubscribe":
            # No ledger source is specific to this button; it is the preference centre's
            # choice offered on the unsubscribe page, so it is recorded as preference_center.
            contact_consent_grant(
                contact=contact,
                channel=payload["ch"],
                purposes=[payload["p"]],
                evidence=common.evidence(
                    request,
                    source=ConsentRecord.Source.PREFERENCE_CENTER,
                    text=context["resubscribe_text"],
                    page="unsubscribe",
                ),
            )
            page = render(request, "campaigns/public/resubscribed.html", context)
            return common.in_language(page, language)
        scope: Scope = "all" if request.POST.get("scope") == "all" else "topic"
        text = context["stop_all_text"] if scope == "all" else context["stop_topic_text"]
        unsubscribe_apply(
            contact=contact,
            channel=payload["ch"],
            purpose=payload["p"],
            scope=scope,
            delivery_id=payload.get("d"),
            evidence=common.evidence(
                request,
                source=ConsentRecord.Source.UNSUBSCRIBE_LINK,
                text=text,
                delivery_id=payload.get("d"),
            ),
        )
        context.update(scope=scope, done_text=text)
        page = render(request, "campaigns/public/unsubscribed.html", context)
        return common.in_language(page, language)


@csrf_exempt
@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def one_click(request: HttpRequest, token: str) -> HttpResponse:
    """RFC 8058: the mailbox provider POSTs `List-Unsubscribe=One-Click` on the person's
    behalf. The signed token is the authority, so there is no CSRF check (and no cookie to
    check it with); a GET is a person who opened the URL, and gets the ordinary page, and a
    HEAD (link checkers, mail scanners) gets its headers: neither changes anything."""
    if request.method in ("GET", "HEAD"):
        return unsubscribe(request, token)
    resolved = _resolve(token)
    if resolved is None:
        return common.invalid_link(request)
    payload, contact = resolved
    if request.POST.get("List-Unsubscribe") != ONE_CLICK_BODY:
        return HttpResponse(
            "Send the body List-Unsubscribe=One-Click (RFC 8058).",
            status=400,
            content_type="text/plain; charset=utf-8",
        )
    language = common.contact_language(request, contact)
    with translation.override(language):
        text = common.stop_topic_text(channel=payload["ch"], purpose=payload["p"])
        unsubscribe_apply(
            contact=contact,
            channel=payload["ch"],
            purpose=payload["p"],
            scope="topic",
            delivery_id=payload.get("d"),
            evidence=common.evidence(
                request,
                source=ConsentRecord.Source.ONE_CLICK,
                text=text,
                delivery_id=payload.get("d"),
            ),
        )
        page = render(
            request,
            "campaigns/public/one_click_done.html",
            {"done_text": text, "first_name": contact.first_name},
        )
    return common.in_language(page, language)
