"""API keys: created once and shown once, stored as a SHA-256 hash, sent as a bearer token.

A key looks like `cad_<43 url-safe characters>`; the first 12 characters are kept in clear as
its prefix, so that staff can tell keys apart in admin without being able to use them.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import functools
import hashlib
import secrets
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django_ratelimit.core import get_usage

from crm.models import ApiKey

KEY_PREFIX = "cad_"
PREFIX_LENGTH = 12
# Touching last_used_at on every request would turn each read into a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)

View = Callable[..., HttpResponse]
# One allowance per key across every endpoint of the API.
RATE_GROUP = "crm.api"


def api_key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_create(*, name: str) -> tuple[ApiKey, str]:
    """A new key under `name`; returns the row and the key itself, which is not kept."""
    name = name.strip()
    if not name:
        raise ValueError("an API key needs a name, e.g. shop-backend")
    if ApiKey.objects.filter(name=name).exists():
        raise ValueError(f"an API key named {name!r} already exists; pick another name")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        name=name, prefix=key[:PREFIX_LENGTH], key_hash=api_key_hash(key)
    )
    return api_key, key


def api_key_authenticate(*, key: str) -> ApiKey | None:
    """The live key matching `key`, or None; marks it used at most once a minute."""
    if not key.startswith(KEY_PREFIX):
        return None
    api_key = ApiKey.objects.filter(key_hash=api_key_hash(key), revoked_at__isnull=True).first()
    if api_key is None:
        return None
    now = timezone.now()
    stale = now - LAST_USED_RESOLUTION
    if api_key.last_used_at is None or api_key.last_used_at < stale:
        # Conditional, so that concurrent requests of the same minute write once between them.
        ApiKey.objects.filter(pk=api_key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
        ).update(last_used_at=now)
        api_key.last_used_at = now
    return api_key


def json_error(status: int, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _api_key_id(group: str, request: HttpRequest) -> str:
    return str(request.api_key.pk)  # type: ignore[attr-defined]


def api_key_seconds_over_limit(request: HttpRequest) -> int | None:
    """Counts this request against its key's sustained rate and burst (settings
    API_RATE_SUSTAINED and API_RATE_BURST; django-ratelimit on Django's cache, shared by every
    process): None while under both, else the seconds until the key may call again."""
    waits: list[int] = []
    for rate in (settings.API_RATE_BURST, settings.API_RATE_SUSTAINED):
        if not rate:
            continue
        usage = get_usage(request, group=RATE_GROUP, key=_api_key_id, rate=rate, increment=True)
        if usage is not None and usage["should_limit"]:
            # time_left is -1 when the cache could not count: ratelimit then fails closed.
            waits.append(max(1, int(usage["time_left"])))
    return max(waits) if waits else None


def _too_many_requests(retry_after: int) -> JsonResponse:
    response = json_error(
        429,
        f"too many requests with this API key; try again in {retry_after} seconds",
        retry_after=retry_after,
    )
    response["Retry-After"] = str(retry_after)
    return response


def _bearer(request: HttpRequest) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def header_api_key(request: HttpRequest) -> tuple[str, str]:
    """(key, problem) from the Authorization header: a Bearer token, or HTTP Basic with the key
    as the username and an empty password (how Segment's and RudderStack's clients send their
    write key). ("", "") when the header holds neither; a problem names what is wrong."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip(), ""
    if scheme.lower() != "basic":
        return "", ""
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", "the Basic credentials are not base64 of 'key:'"
    username, _, password = decoded.partition(":")
    if password:
        return "", "send the API key as the Basic username with an empty password"
    return username.strip(), ""


def api_key_admit(request: HttpRequest, key: str) -> HttpResponse | None:
    """Authenticate `key` for this request and count it against the key's rate limits: None
    when the request may go on (request.api_key is set), else the 401 or 429 to answer."""
    api_key = api_key_authenticate(key=key) if key else None
    if api_key is None:
        return api_key_refused("the API key is wrong or revoked")
    request.api_key = api_key  # type: ignore[attr-defined]
    retry_after = api_key_seconds_over_limit(request)
    if retry_after is not None:
        return _too_many_requests(retry_after)
    return None


def api_key_refused(message: str) -> JsonResponse:
    response = json_error(401, message)
    response["WWW-Authenticate"] = 'Bearer realm="cadence"'
    return response


def api_endpoint(*, methods: tuple[str, ...], authenticated: bool = True) -> Callable[[View], View]:
    """Wrap a view of the API: JSON 405 for other methods, JSON 401 without a valid key, JSON
    429 with Retry-After over the key's rate limits, no CSRF (clients are servers holding a
    key, not browsers holding a session cookie)."""

    def decorate(view: View) -> View:
        @csrf_exempt
        @functools.wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = json_error(
                    405, f"method {request.method} is not allowed here; use {', '.join(methods)}"
                )
                response["Allow"] = ", ".join(methods)
                return response
            if authenticated:
                token = _bearer(request)
                if not token:
                    return api_key_refused("send an API key as 'Authorization: Bearer <key>'")
                refused = api_key_admit(request, token)
                if refused is not None:
                    return refused
            return view(request, *args, **kwargs)

        return wrapped

    return decorate
