"""Signed links for customers: unsubscribe (a page and the RFC 8058 one-click endpoint) and
the preference centre. Tokens are django.core.signing values with a purpose salt each, so a
token for one purpose is worthless for another; they carry ids, never addresses, and stay
valid for TOKEN_MAX_AGE_DAYS (at least a year: people unsubscribe from old mail)."""

from __future__ import annotations

import datetime as dt
from typing import TypedDict

from django.conf import settings
from django.core import signing
from django.urls import reverse

UNSUBSCRIBE_SALT = "campaigns.unsubscribe"
PREFERENCES_SALT = "campaigns.preferences"


class UnsubscribePayload(TypedDict):
    c: int  # contact id
    ch: str  # channel
    p: str  # purpose
    d: int | None  # delivery id, when the link came in a message


def _max_age() -> dt.timedelta:
    return dt.timedelta(days=settings.TOKEN_MAX_AGE_DAYS)


def unsubscribe_token(
    *, contact_id: int, channel: str, purpose: str, delivery_id: int | None = None
) -> str:
    payload: UnsubscribePayload = {"c": contact_id, "ch": channel, "p": purpose, "d": delivery_id}
    return signing.dumps(payload, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_payload(token: str) -> UnsubscribePayload | None:
    """The payload of a valid token; None for every invalid, tampered, truncated or expired
    one, so that callers answer them all alike."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT, max_age=_max_age())
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), int):
        return None
    return data  # type: ignore[return-value]


def preferences_token(*, contact_id: int) -> str:
    return signing.dumps({"c": contact_id}, salt=PREFERENCES_SALT, compress=True)


def preferences_contact_id(token: str) -> int | None:
    try:
        data = signing.loads(token, salt=PREFERENCES_SALT, max_age=_max_age())
    except (signing.BadSignature, ValueError, TypeError):
        return None
    contact_id = data.get("c") if isinstance(data, dict) else None
    return contact_id if isinstance(contact_id, int) else None


def _absolute(path: str) -> str:
    return f"{settings.PUBLIC_BASE_URL}{path}"


def unsubscribe_url(
    *, contact_id: int, channel: str, purpose: str, delivery_id: int | None = None
) -> str:
    """The page a person opens from the visible link: GET confirms, POST acts."""
    token = unsubscribe_token(
        contact_id=contact_id, channel=channel, purpose=purpose, delivery_id=delivery_id
    )
    return _absolute(reverse("campaigns:unsubscribe", args=[token]))


def one_click_unsubscribe_url(
    *, contact_id: int, channel: str, purpose: str, delivery_id: int | None = None
) -> str:
    """The List-Unsubscribe URL: a POST with List-Unsubscribe=One-Click acts at once."""
    token = unsubscribe_token(
        contact_id=contact_id, channel=channel, purpose=purpose, delivery_id=delivery_id
    )
    return _absolute(reverse("campaigns:one_click", args=[token]))


def preferences_url(*, contact_id: int) -> str:
    return _absolute(
        reverse("campaigns:preferences", args=[preferences_token(contact_id=contact_id)])
    )
