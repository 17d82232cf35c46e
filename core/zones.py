"""IANA time-zone names as stored on contacts and schedules, parsed once and cached."""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

UTC = ZoneInfo("UTC")


@functools.lru_cache(maxsize=2048)
def zone_or_none(name: str) -> ZoneInfo | None:
    """The zone `name` names, or None when it is empty or no zone has that name."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def zone_or_utc(name: str) -> ZoneInfo:
    """The zone `name` names, else UTC."""
    return zone_or_none(name) or UTC
