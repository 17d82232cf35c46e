"""SMS quiet hours as a property over every IANA zone and instants around DST changes: the
send-time decision never lets an SMS out before 08:00 or from 21:00 local time."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from hypothesis import given, settings
from hypothesis import strategies as st

from campaigns.services.scheduling import sms_next_allowed

ZONES = sorted(zoneinfo.available_timezones())
# Instants from 2024 to 2028, with extra weight on the hours around the usual DST switches.
INSTANTS = st.one_of(
    # Hypothesis takes naive bounds; every instant is made UTC by the .map below.
    st.datetimes(
        min_value=dt.datetime(2024, 1, 1),  # noqa: DTZ001
        max_value=dt.datetime(2028, 12, 31),  # noqa: DTZ001
    ),
    st.builds(
        lambda year, month, day, minute: (
            dt.datetime(year, month, day, tzinfo=dt.UTC) + dt.timedelta(minutes=minute)
        ),
        st.integers(2024, 2028),
        st.sampled_from([3, 4, 9, 10, 11]),
        st.integers(1, 28),
        st.integers(0, 24 * 60 - 1),
    ),
).map(lambda naive: naive.replace(tzinfo=dt.UTC))


def _local_ok(moment: dt.datetime, zone: str) -> bool:
    local = moment.astimezone(zoneinfo.ZoneInfo(zone)).time()
    return dt.time(8) <= local < dt.time(21)


@settings(max_examples=3000, deadline=None, derandomize=True)
@given(zone=st.sampled_from(ZONES), moment=INSTANTS)
def test_0_sms_outside_08_21_local_in_any_of_the_iana_zones(zone: str, moment: dt.datetime) -> None:
    send_at = sms_next_allowed(moment, [zone])
    assert send_at >= moment
    assert _local_ok(send_at, zone), (zone, moment, send_at)
    # Never later than needed: at most a night and a DST hour away.
    assert send_at - moment <= dt.timedelta(hours=13)


@settings(max_examples=500, deadline=None, derandomize=True)
@given(zones=st.lists(st.sampled_from(ZONES), min_size=2, max_size=4, unique=True), moment=INSTANTS)
def test_an_unknown_zone_waits_for_a_window_open_in_every_candidate_zone_when_one_exists(
    zones: list[str], moment: dt.datetime
) -> None:
    send_at = sms_next_allowed(moment, zones)
    assert send_at >= moment
    if all(_local_ok(send_at, zone) for zone in zones):
        return
    # No common window: the first zone listed decides, and its window is respected.
    assert _local_ok(send_at, zones[0]), (zones, moment, send_at)


def test_every_iana_zone_is_covered() -> None:
    print(f"quiet hours property over {len(ZONES)} IANA zones")
    assert len(ZONES) > 400
