"""Local time for contacts: which zone applies, local send times, SMS quiet hours, local
days. Pure functions over aware datetimes (UTC in, UTC out), DST-correct through zoneinfo.

A contact with no valid zone has no single local time. For SMS quiet hours we then take the
strictest window over every zone that could apply, in this order: the zones of the phone
number (phonenumbers knows them for geographic numbers, e.g. +1 415 → Los Angeles), else the
zones of the contact's country (tzdata's zone.tab), else every US zone. Sending is allowed
only while it is 08:00 to 21:00 in all of them at once. If no instant satisfies all of them
(a country spanning more than 13 hours, such as Russia), the first zone zone.tab lists for
the country decides (or the phone number's first zone in that order). Local send times and
frequency-cap days use settings.DEFAULT_SEND_TIMEZONE for such contacts.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Sequence
from importlib import resources
from zoneinfo import ZoneInfo

from django.conf import settings

from core.zones import zone_or_none, zone_or_utc

UTC = dt.UTC
# Quiet-hours search horizon: the next allowed instant is always within two local days.
_SEARCH_DAYS = 3


def default_zone() -> ZoneInfo:
    return zone_or_utc(settings.DEFAULT_SEND_TIMEZONE)


def contact_zone(timezone_name: str) -> ZoneInfo:
    """The zone for local send times and cap days: the contact's own, else the default."""
    return zone_or_none(timezone_name) or default_zone()


@functools.lru_cache(maxsize=1)
def _country_zones() -> dict[str, tuple[str, ...]]:
    zones: dict[str, list[str]] = defaultdict(list)
    text = resources.files("tzdata").joinpath("zoneinfo", "zone.tab").read_text()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) >= 3:
            zones[parts[0]].append(parts[2])
    return {country: tuple(names) for country, names in zones.items()}


def country_zones(country: str) -> tuple[str, ...]:
    return _country_zones().get((country or "").upper(), ())


@functools.lru_cache(maxsize=4096)
def phone_zones(phone: str) -> tuple[str, ...]:
    import phonenumbers
    from phonenumbers import timezone as phone_timezone

    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return ()
    names = [n for n in phone_timezone.time_zones_for_number(number) if zone_or_none(n)]
    # phonenumbers lists zones alphabetically; put the country's most populous first, as
    # zone.tab does, since it decides when the zones share no window.
    order = {
        name: i
        for i, name in enumerate(country_zones(phonenumbers.region_code_for_number(number) or ""))
    }
    return tuple(sorted(names, key=lambda name: order.get(name, len(order))))


def quiet_hours_zones(*, timezone_name: str, country: str, phone: str) -> tuple[str, ...]:
    """Every zone whose quiet hours must be respected for this contact (see module doc)."""
    if zone_or_none(timezone_name) is not None:
        return (timezone_name,)
    for candidates in (phone_zones(phone) if phone else (), country_zones(country)):
        if candidates:
            return candidates
    return country_zones("US")


def _window() -> tuple[dt.time, dt.time]:
    return (
        dt.time(settings.SMS_WINDOW_START_HOUR),
        dt.time(settings.SMS_WINDOW_END_HOUR),
    )


def _allowed_everywhere(moment: dt.datetime, zones: Sequence[str]) -> bool:
    start, end = _window()
    for name in zones:
        local = moment.astimezone(contact_zone(name)).time()
        if not (start <= local < end):
            return False
    return True


def _local_starts(moment: dt.datetime, zone: ZoneInfo, at: dt.time) -> list[dt.datetime]:
    """`at` local time on the local day of `moment` and the next few days, in UTC. A time
    that does not exist on a spring-forward day is taken as the instant after the gap."""
    local_day = moment.astimezone(zone).date()
    starts = []
    for offset in range(_SEARCH_DAYS):
        day = local_day + dt.timedelta(days=offset)
        starts.append(_local_to_utc(dt.datetime.combine(day, at), zone))
    return starts


def _local_to_utc(naive: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    aware = naive.replace(tzinfo=zone)
    # A wall time inside a spring-forward gap does not round-trip; zoneinfo then resolves
    # it with the offset before the gap, which lands after the gap: what we want.
    return aware.astimezone(UTC)


def sms_next_allowed(moment: dt.datetime, zones: Sequence[str]) -> dt.datetime:
    """`moment` itself when SMS may go out then, else the earliest later instant at which it
    is between the window start and end in every zone (DST-correct). The one quiet-hours
    test: a delivery may be sent when this returns `moment`."""
    if not zones or _allowed_everywhere(moment, zones):
        return moment
    start, _end = _window()
    candidates = sorted(
        instant
        for name in zones
        for instant in _local_starts(moment, contact_zone(name), start)
        if instant > moment
    )
    for instant in candidates:
        if _allowed_everywhere(instant, zones):
            return instant
    # No common window (zones too far apart): the first zone listed decides.
    return sms_next_allowed(moment, zones[:1]) if len(zones) > 1 else candidates[0]


def local_time_on_or_after(moment: dt.datetime, zone: ZoneInfo, at: dt.time) -> dt.datetime:
    """The first instant at or after `moment` when the wall clock in `zone` shows `at`:
    today's if it is still ahead, else tomorrow's (rolling across zones)."""
    for instant in _local_starts(moment, zone, at):
        if instant >= moment:
            return instant
    raise AssertionError("unreachable: a local time recurs every day")


def next_local_day_start(moment: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Midnight at the start of the contact's next local calendar day, in UTC."""
    local_day = moment.astimezone(zone).date() + dt.timedelta(days=1)
    return _local_to_utc(dt.datetime.combine(local_day, dt.time(0)), zone)


def local_days_window_start(moment: dt.datetime, zone: ZoneInfo, days: int) -> dt.datetime:
    """The start of a window of `days` local calendar days ending with today (local)."""
    first_day = moment.astimezone(zone).date() - dt.timedelta(days=max(days, 1) - 1)
    return _local_to_utc(dt.datetime.combine(first_day, dt.time(0)), zone)
