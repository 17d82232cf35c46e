"""Public pages of crm: the subscribe form (HTML and JSON) and the double opt-in confirmation.

Every answer is the same whether or not an address is known or suppressed, and every invalid
confirmation link gets the same 404 page, so that nothing here can be used to probe who is
on the list."""

from __future__ import annotations

import ipaddress
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.utils import translation
from django.utils.translation import gettext_lazy as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from django_ratelimit.core import get_usage

from crm.jsonbody import JsonBodyError, json_body_read
from crm.models import DoubleOptIn
from crm.normalise import normalise_email
from crm.services.optin import (
    mask_email,
    optin_confirm,
    optin_for_token,
    optin_is_open,
    optin_language,
    optin_request,
    subscribe_consent_text,
)

_NAME_MAX = 150
_EMAIL_MAX = 254
# An email, a name, a flag and a language fit in far less; anything longer is not a subscriber.
_JSON_MAX_BYTES = 4096
_JSON_FIELDS = frozenset({"email", "first_name", "consent", "language"})
_RATE_GROUP = "crm.subscribe"


def _language_codes() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


class SubscribeForm(forms.Form):
    email = forms.CharField(
        label=_("Email address"),
        max_length=_EMAIL_MAX,
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

    def __init__(self, *args: Any, language: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["consent"].label = subscribe_consent_text(language=language)

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


def client_ip_for_rate_limit(request: HttpRequest) -> str:
    """django-ratelimit's client address (settings.RATELIMIT_IP_META_KEY): REMOTE_ADDR as
    _client_ip reads it. Requests without a usable one share a single allowance rather
    than escaping the limit (or failing: ratelimit's own reader raises on an empty one)."""
    return _client_ip(request) or "0.0.0.0"  # noqa: S104 (a bucket name, not a bind address)


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


def _request_language(request: HttpRequest) -> str:
    """The language LocaleMiddleware chose for this request, as a LANGUAGES code."""
    try:
        return translation.get_supported_language_variant(
            getattr(request, "LANGUAGE_CODE", "") or settings.LANGUAGE_CODE
        ).lower()
    except LookupError:
        return str(settings.LANGUAGE_CODE)


def _seconds_over_ip_limit(request: HttpRequest) -> int | None:
    """Counts this POST against the client's allowance (django-ratelimit on Django's cache,
    shared by every process); the seconds until the client may POST again when over it."""
    usage = get_usage(
        request,
        group=_RATE_GROUP,
        key="ip",
        rate=settings.SUBSCRIBE_RATE_PER_IP,
        method="POST",
        increment=True,
    )
    if usage is None or not usage["should_limit"]:
        return None
    # time_left is -1 when the cache could not count: ratelimit then fails closed.
    return max(1, int(usage["time_left"]))


def _too_many_requests(request: HttpRequest, retry_after: int) -> HttpResponse:
    """The same answer whatever address was asked for: it is about the client, not the
    address, and names none."""
    minutes = max(1, -(-retry_after // 60))
    response: HttpResponse
    if _is_json(request):
        response = JsonResponse(
            {
                "errors": {
                    "rate": [
                        f"Too many subscribe requests from this network address; try again "
                        f"in {retry_after} seconds."
                    ]
                }
            },
            status=429,
        )
    else:
        response = render(
            request, "crm/subscribe_rate_limited.html", {"minutes": minutes}, status=429
        )
    response.headers["Retry-After"] = str(retry_after)
    return response


def _json_errors(errors: dict[str, list[str]], status: int = 400) -> JsonResponse:
    return JsonResponse({"errors": errors}, status=status)


def _body_errors(exc: JsonBodyError) -> JsonResponse:
    if not exc.errors:
        return _json_errors({"body": [exc.message]}, exc.status)
    named: dict[str, list[str]] = {}
    for error in exc.errors:
        named.setdefault(error.field or "body", []).append(error.message)
    return _json_errors(named, exc.status)


def _unknown_field_errors(payload: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for key in sorted(set(payload) - _JSON_FIELDS):
        if key in ("consent_text", "consent_text_version"):
            errors[key] = [
                f"{key} cannot be sent: the consent words recorded are the configured ones "
                f"(SUBSCRIBE_CONSENT_TEXT, in the request's language), shown on the form."
            ]
        else:
            errors[key] = [f"unknown field; send only {', '.join(sorted(_JSON_FIELDS))}."]
    return errors


def _email_from(payload: dict[str, Any], errors: dict[str, list[str]]) -> str:
    email = payload.get("email")
    if not isinstance(email, str) or len(email) > _EMAIL_MAX:
        errors["email"] = [f"email is required, a string of at most {_EMAIL_MAX} characters."]
        return ""
    try:
        return normalise_email(email)
    except ValidationError as exc:
        errors["email"] = list(exc.messages)
        return ""


def _subscribe_json(request: HttpRequest) -> JsonResponse:
    try:
        payload = json_body_read(request, max_bytes=_JSON_MAX_BYTES)
    except JsonBodyError as exc:
        return _body_errors(exc)
    if not isinstance(payload, dict):
        return _json_errors(
            {"body": ['Send a JSON object, e.g. {"email": "...", "consent": true}.']}
        )
    errors = _unknown_field_errors(payload)
    address = _email_from(payload, errors)
    first_name = payload.get("first_name", "")
    if first_name is None:
        first_name = ""
    if not isinstance(first_name, str) or len(first_name) > _NAME_MAX:
        errors["first_name"] = [f"first_name must be a string of at most {_NAME_MAX} characters."]
    if payload.get("consent") is not True:
        errors["consent"] = ["consent must be true: the person ticked the consent box."]
    language = payload.get("language", _request_language(request))
    codes = _language_codes()
    if not isinstance(language, str) or language.lower() not in codes:
        errors["language"] = [
            f"language is the language the form was shown in, one of {', '.join(codes)}."
        ]
    if errors:
        return _json_errors(errors)
    language = str(language).lower()
    optin_request(
        email=address,
        first_name=str(first_name),
        text=subscribe_consent_text(language=language),
        text_version=settings.SUBSCRIBE_CONSENT_VERSION,
        language=language,
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
    this site never grants) records a pending request and mails the confirmation link.

    Every POST counts against the client's SUBSCRIBE_RATE_PER_IP first (429 beyond it);
    limits per address (crm.services.optin) answer exactly like a success."""
    if request.method == "POST":
        retry_after = _seconds_over_ip_limit(request)
        if retry_after is not None:
            return _too_many_requests(request, retry_after)
    if request.method == "POST" and _is_json(request):
        return _subscribe_json(request)
    language = _request_language(request)
    if request.method == "POST":
        rejected = _csrf_rejection(request)
        if rejected is not None:
            return rejected
        # The form carries the language its page was shown in, so that the words recorded
        # are the words shown even if the browser's language changed before the POST.
        shown_in = request.POST.get("language", "")
        if shown_in in _language_codes():
            language = shown_in
        with translation.override(language):
            form = SubscribeForm(request.POST, language=language)
            if form.is_valid():
                email = form.cleaned_data["email"]
                optin_request(
                    email=email,
                    first_name=form.cleaned_data["first_name"],
                    text=subscribe_consent_text(language=language),
                    text_version=settings.SUBSCRIBE_CONSENT_VERSION,
                    language=language,
                    ip_address=_client_ip(request),
                    user_agent=_user_agent(request),
                )
                page = render(
                    request,
                    "crm/subscribe_sent.html",
                    {
                        "masked_email": mask_email(email),
                        "expiry_hours": settings.OPTIN_EXPIRY_HOURS,
                    },
                )
            else:
                page = render(
                    request, "crm/subscribe_form.html", {"form": form, "language": language}
                )
        page.headers["Content-Language"] = language
        return page
    form = SubscribeForm(language=language)
    return render(request, "crm/subscribe_form.html", {"form": form, "language": language})


def _invalid_link(request: HttpRequest) -> HttpResponse:
    return render(request, "crm/subscribe_invalid.html", status=404)


@never_cache
@require_http_methods(["GET", "POST"])
def subscribe_confirm(request: HttpRequest, token: str) -> HttpResponse:
    """GET shows a button and changes nothing (mail scanners follow links); POST confirms.
    The page is in the language of the form the request came from: it shows the consent
    words the person agrees to, in the words the ledger will record."""
    optin = optin_for_token(token=token)
    if optin is None:
        return _invalid_link(request)
    language = optin_language(optin=optin)
    with translation.override(language):
        page = _subscribe_confirm_page(request, optin)
    if page is None:
        # Outside the request's language: every invalid link gets the very same page.
        return _invalid_link(request)
    page.headers["Content-Language"] = language
    return page


def _subscribe_confirm_page(request: HttpRequest, optin: DoubleOptIn) -> HttpResponse | None:
    """The page for a genuine link, or None when it can no longer be used."""
    if optin.status == DoubleOptIn.Status.CONFIRMED:
        return render(request, "crm/subscribe_already_confirmed.html")
    if not optin_is_open(optin=optin):
        return None
    # No name: it was typed by whoever asked, who need not be the person.
    context = {
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
            return None
        return render(request, "crm/subscribe_confirmed.html", context)
    return render(request, "crm/subscribe_confirm.html", context)
