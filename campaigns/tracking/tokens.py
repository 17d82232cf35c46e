"""Signed tokens of tracked links and open pixels, and the click id appended to targets.

A token is a django.core.signing value with its own purpose salt (one for clicks, one for
opens), so neither it nor an unsubscribe token is worth anything for another purpose. It
carries ids only: the target is read from what was sent (Delivery.tracked_links), never from
the request, so no token can be made to redirect anywhere else."""

from __future__ import annotations

import datetime as dt
import re

from django.conf import settings
from django.core import signing
from django.utils.crypto import constant_time_compare, salted_hmac

CLICK_SALT = "campaigns.tracking.click"
OPEN_SALT = "campaigns.tracking.open"
CLICK_ID_SALT = "campaigns.tracking.click_id"
CLICK_ID_PARAMETER = "cadence_cid"


def _max_age() -> dt.timedelta:
    return dt.timedelta(days=settings.TRACKING_LINK_MAX_AGE_DAYS)


def click_token(*, delivery_id: int, link_index: int) -> str:
    return signing.dumps([delivery_id, link_index], salt=CLICK_SALT, compress=True)


def open_token(*, delivery_id: int) -> str:
    return signing.dumps(delivery_id, salt=OPEN_SALT, compress=True)


def click_payload(token: str) -> tuple[int, int] | None:
    """(delivery id, link index) of a valid token; None for every tampered, foreign, truncated
    or expired one, so that the view answers them all alike."""
    try:
        data = signing.loads(token, salt=CLICK_SALT, max_age=_max_age())
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if (
        isinstance(data, list)
        and len(data) == 2
        and all(type(value) is int and value >= 0 for value in data)
    ):
        return data[0], data[1]
    return None


def open_delivery_id(token: str) -> int | None:
    try:
        data = signing.loads(token, salt=OPEN_SALT, max_age=_max_age())
    except (signing.BadSignature, ValueError, TypeError):
        return None
    return data if type(data) is int and data >= 0 else None


def _click_id_signature(delivery_id: int, link_index: int) -> str:
    return salted_hmac(CLICK_ID_SALT, f"{delivery_id}-{link_index}").hexdigest()[:12]


def click_id(*, delivery_id: int, link_index: int) -> str:
    """The click id appended to a target (cadence_cid=...): short, and signed, so that an
    order event carrying it names the delivery it came from and nobody can forge one."""
    return f"{delivery_id}-{link_index}-{_click_id_signature(delivery_id, link_index)}"


_CLICK_ID = re.compile(r"(\d{1,18})-(\d{1,6})-([0-9a-f]{12})")


def click_id_parse(value: str) -> tuple[int, int] | None:
    """(delivery id, link index) of a genuine click id, else None."""
    match = _CLICK_ID.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        return None
    delivery_id, link_index = int(match.group(1)), int(match.group(2))
    if not constant_time_compare(match.group(3), _click_id_signature(delivery_id, link_index)):
        return None
    return delivery_id, link_index
