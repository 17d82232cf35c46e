"""Provider webhooks. Twilio's: inbound replies (STOP, START, HELP and anything else) and
message status callbacks, checked with Twilio's request signature first. The email tracking
webhook: anymail's view for the one ESP named by EMAIL_ESP, behind its basic auth;
campaigns.receivers takes its signal.

Authenticated by default: a webhook whose secret is not configured refuses every request
with 401, a wrong secret gets 401 (a bad Twilio signature 403), and a body that cannot be
read gets 400 or 413. None of these changes anything."""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from campaigns import webhook_tasks
from campaigns.channels.provider_events import (
    WebhookMalformed,
    WebhookUnauthorized,
    anymail_tracking_esps,
    anymail_tracking_handle,
    twilio_signature_valid,
    twiml_answer,
)
from campaigns.services.provider_events import SmsInbound, sms_inbound_apply

logger = logging.getLogger(__name__)

_TWIML = "application/xml; charset=utf-8"


def _signed_url(request: HttpRequest) -> str:
    """The URL Twilio called, as Twilio saw it: behind a proxy the request's own host and
    scheme are not that, so PUBLIC_BASE_URL is trusted when set."""
    if settings.PUBLIC_BASE_URL:
        return f"{settings.PUBLIC_BASE_URL}{request.get_full_path()}"
    return request.build_absolute_uri()


def _unauthorized(message: str, *, basic_realm: str = "") -> HttpResponse:
    response = HttpResponse(message, status=401, content_type="text/plain; charset=utf-8")
    if basic_realm:
        response["WWW-Authenticate"] = f'Basic realm="{basic_realm}", charset="UTF-8"'
    return response


@csrf_exempt
def email_tracking(request: HttpRequest, esp: str) -> HttpResponse:
    """The tracking webhook of the configured ESP only: any other ESP's URL (and every one of
    them when EMAIL_ESP is empty, the embedded default) does not exist."""
    if not settings.EMAIL_ESP or esp != settings.EMAIL_ESP or esp not in anymail_tracking_esps():
        raise Http404("No such webhook.")
    realm = f"{esp} webhooks"
    if not settings.ANYMAIL.get("WEBHOOK_SECRET"):
        # anymail would only warn and accept anyone's fake bounces; `manage.py check` reports it.
        logger.warning("Email webhook %s refused: ANYMAIL_WEBHOOK_SECRET is not set", request.path)
        return _unauthorized("This webhook is not configured.", basic_realm=realm)
    try:
        return anymail_tracking_handle(request, esp=esp)
    except WebhookUnauthorized:
        logger.warning("Email webhook %s refused: missing or wrong credentials", request.path)
        return _unauthorized("Missing or wrong credentials.", basic_realm=realm)
    except WebhookMalformed as exc:
        logger.warning("Email webhook %s refused: %s", request.path, exc)
        return HttpResponse(
            "The webhook body could not be read.",
            status=exc.status,
            content_type="text/plain; charset=utf-8",
        )


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


def _twilio_refusal(request: HttpRequest) -> HttpResponse | None:
    """401 while TWILIO_AUTH_TOKEN is unset (nothing can be verified), 403 for a bad signature."""
    if not settings.TWILIO_AUTH_TOKEN:
        logger.warning("Twilio webhook %s refused: TWILIO_AUTH_TOKEN is not set", request.path)
        return _unauthorized("This webhook is not configured.")
    if not _from_twilio(request):
        return HttpResponseForbidden("Invalid Twilio signature.")
    return None


@csrf_exempt
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    if refusal := _twilio_refusal(request):
        return refusal
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
    if refusal := _twilio_refusal(request):
        return refusal
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
    webhook_tasks.sms_status_record.delay_on_commit(*args)
    return HttpResponse(status=204)
