"""Public pages of crm: the subscribe form (HTML and JSON) and the double opt-in confirmation.

Every answer is the same whether or not an address is known or suppressed, and every invalid
confirmation link gets the same 404 page, so that nothing here can be used to probe who is
on the list."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from crm.models import DoubleOptIn
from crm.normalise import normalise_email
from crm.services.optin import (
    mask_email,
    optin_confirm,
    optin_for_token,
    optin_is_open,
    optin_request,
)

_NAME_MAX = 150


class SubscribeForm(forms.Form):
    email = forms.CharField(
        label=_("Email address"),
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}),
    )
    first_name = forms.CharField(
        label=_("First name (optional)"),
        max_length=_NAME_MAX,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "given-name"}),
    )
    consent = forms.BooleanField(
        required=True,
        error_messages={"required": _("Please tick the box to agree, so we may email you.")},
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["consent"].label = settings.SUBSCRIBE_CONSENT_TEXT

    def clean_email(self) -> str:
        try:
            return normalise_email(self.cleaned_data["email"])
        except ValidationError as exc:
            raise ValidationError(_("Enter a valid email address.")) from exc


def _client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: a forwarded-for header is whatever the client wants it to be, and
    # the deployment's proxy is expected to set REMOTE_ADDR.
    value = request.META.get("REMOTE_ADDR", "")
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return None


def _user_agent(request: HttpRequest) -> str:
    return str(request.META.get("HTTP_USER_AGENT", ""))


def _form_checked(request: HttpRequest) -> HttpResponse:
    return HttpResponse()


def _csrf_rejection(request: HttpRequest) -> HttpResponseBase | None:
    """The subscribe view is CSRF-exempt for its JSON only; the HTML form gets the
    middleware's own check, with the same 403 page."""
    return CsrfViewMiddleware(_form_checked).process_view(request, _form_checked, (), {})


def _is_json(request: HttpRequest) -> bool:
    return request.content_type == "application/json"


def _subscribe_json(request: HttpRequest) -> JsonResponse:
    try:
        payload = json.loads(request.body or b"null")
    except (ValueError, UnicodeDecodeError):
        return JsonResponse({"errors": {"body": ["The body is not valid JSON."]}}, status=400)
    if not isinstance(payload, dict):
        return JsonResponse(
            {"errors": {"body": ['Send a JSON object, e.g. {"email": "...", "consent": true}.']}},
            status=400,
        )
    errors: dict[str, list[str]] = {}
    email = payload.get("email")
    address = ""
    first_name = payload.get("first_name") or ""
    text = payload.get("consent_text") or settings.SUBSCRIBE_CONSENT_TEXT
    text_version = payload.get("consent_text_version") or settings.SUBSCRIBE_CONSENT_VERSION
    if not isinstance(email, str):
        errors["email"] = ["email is required and must be a string."]
    else:
        try:
            address = normalise_email(email)
        except ValidationError as exc:
            errors["email"] = list(exc.messages)
    if not isinstance(first_name, str) or len(first_name) > _NAME_MAX:
        errors["first_name"] = [f"first_name must be a string of at most {_NAME_MAX} characters."]
    if payload.get("consent") is not True:
        errors["consent"] = ["consent must be true: the person ticked the consent box."]
    if not isinstance(text, str) or not isinstance(text_version, str) or len(text_version) > 64:
        errors["consent_text"] = [
            "consent_text must be a string and consent_text_version at most 64 characters."
        ]
    if errors:
        return JsonResponse({"errors": errors}, status=400)
    optin_request(
        email=address,
        first_name=first_name,
        text=text,
        text_version=text_version,
        ip_address=_client_ip(request),
        user_agent=_user_agent(request),
    )
    return JsonResponse(
        {"status": "pending", "detail": "If the address can be subscribed, a link is on its way."},
        status=202,
    )


@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest) -> HttpResponseBase:
    """GET shows the form; POST of the form (CSRF checked) or of JSON (no cookies, so no
    CSRF: a cross-site page cannot send application/json without a CORS preflight, which
    this site never grants) records a pending request and mails the confirmation link."""
    if request.method == "POST" and _is_json(request):
        return _subscribe_json(request)
    if request.method == "POST":
        rejected = _csrf_rejection(request)
        if rejected is not None:
            return rejected
        form = SubscribeForm(request.POST)
        if form.is_valid():
            email = form.cleaned_data["email"]
            optin_request(
                email=email,
                first_name=form.cleaned_data["first_name"],
                text=settings.SUBSCRIBE_CONSENT_TEXT,
                text_version=settings.SUBSCRIBE_CONSENT_VERSION,
                ip_address=_client_ip(request),
                user_agent=_user_agent(request),
            )
            return render(
                request,
                "crm/subscribe_sent.html",
                {"masked_email": mask_email(email), "expiry_hours": settings.OPTIN_EXPIRY_HOURS},
            )
    else:
        form = SubscribeForm()
    return render(request, "crm/subscribe_form.html", {"form": form})


def _invalid_link(request: HttpRequest) -> HttpResponse:
    return render(request, "crm/subscribe_invalid.html", status=404)


@never_cache
@require_http_methods(["GET", "POST"])
def subscribe_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and changes nothing (mail scanners follow links); POST confirms."""
    optin = optin_for_token(token=token)
    if optin is None:
        return _invalid_link(request)
    if optin.status == DoubleOptIn.Status.CONFIRMED:
        return render(request, "crm/subscribe_already_confirmed.html")
    if not optin_is_open(optin=optin):
        return _invalid_link(request)
    context = {
        "first_name": optin.contact.first_name,
        "masked_email": mask_email(optin.contact.email or ""),
        "consent_text": optin.text,
    }
    if request.method == "POST":
        record = optin_confirm(
            optin=optin, ip_address=_client_ip(request), user_agent=_user_agent(request)
        )
        if record is None:
            # Lost a race with another click, or expired between the two reads.
            optin.refresh_from_db()
            if optin.status == DoubleOptIn.Status.CONFIRMED:
                return render(request, "crm/subscribe_already_confirmed.html")
            return _invalid_link(request)
        return render(request, "crm/subscribe_confirmed.html", context)
    return render(request, "crm/subscribe_confirm.html", context)
