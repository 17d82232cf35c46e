"""The page django-axes answers with once a (username, address) pair is locked out of the
admin login: 429 Too Many Requests, saying what happened and when to try again."""

from __future__ import annotations

from typing import Any

from axes.helpers import get_client_username, get_cool_off, get_failure_limit
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    cool_off = get_cool_off(request)
    minutes = max(1, round(cool_off.total_seconds() / 60)) if cool_off else None
    response = TemplateResponse(
        request,
        "admin/lockout.html",
        {
            "title": "Too many failed logins",
            "failure_limit": get_failure_limit(request, credentials),
            # Shown escaped, like everything a stranger can type.
            "username": get_client_username(request, credentials) or "",
            "cooloff_minutes": minutes,
        },
        status=429,
    )
    if minutes:
        response["Retry-After"] = str(minutes * 60)
    return response.render()
