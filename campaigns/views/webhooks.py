"""Twilio's webhooks: inbound replies (STOP, START, HELP and anything else) and message status
callbacks. Both are checked with Twilio's request signature first; a request without a valid
one gets 403 and changes nothing. (Email tracking webhooks are anymail's own views, mounted
at /webhooks/anymail/; campaigns.receivers takes their signal.)"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns import webhook_tasks
from campaigns.channels.provider_events import twilio_signature_valid, twiml_answer
from campaigns.services.provider_events import SmsInbound, sms_inbound_apply

logger = logging.getLogger(__name__)

_TWIML = "application/xml; charset=utf-8"


def _signed_url(request: HttpRequest) -> str:
    """The URL Twilio called, as Twilio saw it: behind a proxy the request's own host and
    scheme are not that, so PUBLIC_BASE_URL is trusted when set."""
    if settings.PUBLIC_BASE_URL:
        return f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}"
    return request.build_absolute_uri()


def _from_twilio(request: HttpRequest) -> bool:
    valid = twilio_signature_valid(
        url=_signed_url(request),
        params=request.POST,
        signature=request.headers.get("X-Twilio-Signature", ""),
        auth_token=settings.TWILIO_AUTH_TOKEN,
    )
    if not valid:
        logger.warning("Twilio webhook %s refused: bad or missing signature", request.path)
    return valid


def _twiml(message: str | None = None) -> HttpResponse:
    return HttpResponse(twiml_answer(message), content_type=_TWIML)


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    if not _from_twilio(request):
        return HttpResponseForbidden("Invalid Twilio signature.")
    message_sid = request.POST.get("MessageSid") or request.POST.get("SmsSid") or ""
    if not message_sid:
        return HttpResponse("MessageSid is missing.", status=400)
    outcome = sms_inbound_apply(
        message=SmsInbound(
            message_sid=message_sid,
            from_number=request.POST.get("From", ""),
            body=request.POST.get("Body", ""),
            payload=request.POST.dict(),
        )
    )
    if outcome == "help":
        return _twiml(settings.SMS_HELP_TEXT)
    # STOP and START are confirmed by Twilio's own opt-out handling; anything more from us
    # to a number that just opted out would be refused anyway.
    return _twiml()


@csrf_exempt
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    if not _from_twilio(request):
        return HttpResponseForbidden("Invalid Twilio signature.")
    message_sid = request.POST.get("MessageSid") or request.POST.get("SmsSid") or ""
    status = request.POST.get("MessageStatus") or request.POST.get("SmsStatus") or ""
    if not (message_sid and status):
        return HttpResponse("MessageSid and MessageStatus are required.", status=400)
    args = (
        message_sid,
        status.lower(),
        request.POST.get("ErrorCode", ""),
        request.POST.get("To", ""),
        request.POST.dict(),
    )
    transaction.on_commit(lambda: webhook_tasks.sms_status_record.delay(*args))
    return HttpResponse(status=204)
