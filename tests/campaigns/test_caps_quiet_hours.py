"""Frequency caps across campaigns in each contact's local days, and SMS quiet hours in each
contact's zone, including DST change days."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest

from campaigns.models import Campaign, Delivery, FrequencyCap
from campaigns.services.launch import campaign_launch
from campaigns.services.scheduling import quiet_hours_zones, sms_next_allowed
from campaigns.services.send import deliveries_send
from crm.models import Contact
from tests.campaigns.dispatch_helpers import campaign_for, deliveries, grant
from tests.factories import ContactFactory

S = Delivery.Status
UTC = dt.UTC


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


# --- Quiet hours: pure ------------------------------------------------------------------------


def test_new_york_night_before_the_spring_forward_waits_for_eight_edt() -> None:
    # 2026-03-07 22:00 EST; clocks go forward at 02:00 on the 8th, so 08:00 is 12:00 UTC.
    assert sms_next_allowed(at(2026, 3, 8, 3), ["America/New_York"]) == at(2026, 3, 8, 12)


def test_new_york_night_after_the_spring_forward_waits_for_eight_edt() -> None:
    assert sms_next_allowed(at(2026, 3, 8, 11, 59), ["America/New_York"]) == at(2026, 3, 8, 12)
    assert sms_next_allowed(at(2026, 3, 8, 12), ["America/New_York"]) == at(2026, 3, 8, 12)


def test_paris_evening_before_the_change_waits_for_eight_cest() -> None:
    # 2026-03-28 21:30 CET; on the 29th 08:00 CEST is 06:00 UTC (07:00 UTC the day before).
    assert sms_next_allowed(at(2026, 3, 28, 20, 30), ["Europe/Paris"]) == at(2026, 3, 29, 6)
    assert sms_next_allowed(at(2026, 3, 28, 6, 30), ["Europe/Paris"]) == at(2026, 3, 28, 7)


def test_the_window_closes_at_nine_in_the_evening_local() -> None:
    assert sms_next_allowed(at(2026, 3, 29, 18, 59), ["Europe/Paris"]) == at(2026, 3, 29, 18, 59)
    assert sms_next_allowed(at(2026, 3, 29, 19), ["Europe/Paris"]) == at(2026, 3, 30, 6)


def test_an_unknown_zone_uses_the_phone_numbers_zone_then_the_country_then_all_us() -> None:
    assert quiet_hours_zones(timezone_name="", country="", phone="+14155550100") == (
        "America/Los_Angeles",
    )
    assert quiet_hours_zones(timezone_name="Bad/Zone", country="FR", phone="") == ("Europe/Paris",)
    us = quiet_hours_zones(timezone_name="", country="", phone="")
    assert {"America/New_York", "Pacific/Honolulu"} <= set(us)


def test_an_unknown_zone_in_the_us_gets_the_strictest_window_across_its_zones() -> None:
    zones = quiet_hours_zones(timezone_name="", country="US", phone="")
    # 13:00 UTC is 09:00 in New York but 03:00 in Honolulu: wait for 08:00 in Honolulu.
    assert sms_next_allowed(at(2026, 6, 1, 13), zones) == at(2026, 6, 1, 18)
    # 01:30 UTC is 21:30 in New York: closed until Honolulu's 08:00 the next day.
    assert sms_next_allowed(at(2026, 6, 2, 1, 30), zones) == at(2026, 6, 2, 18)


# --- Quiet hours: through the pipeline --------------------------------------------------------


@pytest.mark.django_db
def test_an_sms_at_night_is_deferred_to_eight_local_and_sent_then(outbox: Path) -> None:
    ny = ContactFactory.create(phone="+12125550100", timezone="America/New_York")
    paris = ContactFactory.create(phone="+33612345678", timezone="Europe/Paris")
    for contact in (ny, paris):
        grant(contact, channel="sms")
    campaign = campaign_for([ny, paris], channel="sms")
    campaign_launch(campaign=campaign, enqueue=False)
    ids = [d.pk for d in deliveries(campaign).values()]

    # 2026-03-08 03:00 UTC: 22:00 in New York (the evening before DST), 04:00 in Paris.
    deliveries_send(delivery_ids=ids, now=at(2026, 3, 8, 3))
    rows = deliveries(campaign)
    assert (rows[ny.pk].status, rows[ny.pk].reason) == (S.DEFERRED, "quiet_hours")
    assert rows[ny.pk].not_before == at(2026, 3, 8, 12)
    assert rows[paris.pk].not_before == at(2026, 3, 8, 7)
    assert not (outbox / "sms.jsonl").exists()

    deliveries_send(delivery_ids=ids, now=at(2026, 3, 8, 7))
    lines = (outbox / "sms.jsonl").read_text().splitlines()
    assert len(lines) == 1 and "+33612345678" in lines[0]
    deliveries_send(delivery_ids=ids, now=at(2026, 3, 8, 12))
    assert len((outbox / "sms.jsonl").read_text().splitlines()) == 2


@pytest.mark.django_db
def test_quiet_hours_do_not_hold_email(outbox: Path) -> None:
    ada = ContactFactory.create(timezone="America/New_York")
    grant(ada)
    campaign = campaign_for([ada])
    campaign_launch(campaign=campaign, enqueue=False)
    deliveries_send(delivery_ids=[deliveries(campaign)[ada.pk].pk], now=at(2026, 3, 8, 6))
    assert deliveries(campaign)[ada.pk].status == S.SENT


# --- Frequency caps ---------------------------------------------------------------------------


def _sent_before(contact: Contact, *, channel: str, when: dt.datetime, n: int = 1) -> None:
    for _ in range(n):
        other = campaign_for([], channel=channel)
        Delivery.objects.create(
            campaign=other, contact=contact, channel=channel, status=S.SENT, sent_at=when
        )


@pytest.mark.django_db
def test_the_email_cap_counts_messages_of_other_campaigns(outbox: Path) -> None:
    # Default cap: 3 marketing emails in 7 local days.
    ada = ContactFactory.create(timezone="Europe/Paris")
    bob = ContactFactory.create(timezone="Europe/Paris")
    for contact in (ada, bob):
        grant(contact)
    now = at(2026, 6, 10, 12)
    _sent_before(ada, channel="email", when=now - dt.timedelta(days=2), n=3)
    _sent_before(bob, channel="email", when=now - dt.timedelta(days=8), n=3)
    campaign = campaign_for([ada, bob])
    campaign_launch(campaign=campaign, enqueue=False, now=now)
    deliveries_send(delivery_ids=[d.pk for d in deliveries(campaign).values()], now=now)
    rows = deliveries(campaign)
    assert (rows[ada.pk].status, rows[ada.pk].reason) == (S.DEFERRED, "capped")
    # The next local day in Paris starts at 22:00 UTC (CEST).
    assert rows[ada.pk].not_before == at(2026, 6, 10, 22)
    assert rows[bob.pk].status == S.SENT


@pytest.mark.django_db
def test_the_sms_cap_follows_each_contacts_own_local_day(outbox: Path) -> None:
    # Default cap: 1 SMS a local day. Both got one at 14:00 UTC on June 1: 23:00 in Tokyo,
    # 07:00 in Los Angeles.
    tokyo = ContactFactory.create(phone="+81312345678", timezone="Asia/Tokyo")
    la = ContactFactory.create(phone="+12135550100", timezone="America/Los_Angeles")
    for contact in (tokyo, la):
        grant(contact, channel="sms")
        _sent_before(contact, channel="sms", when=at(2026, 6, 1, 14))
    campaign = campaign_for([tokyo, la], channel="sms")
    campaign_launch(campaign=campaign, enqueue=False)
    # 16:00 UTC: 01:00 on June 2 in Tokyo (a new day, but night), 09:00 on June 1 in LA.
    deliveries_send(
        delivery_ids=[d.pk for d in deliveries(campaign).values()], now=at(2026, 6, 1, 16)
    )
    rows = deliveries(campaign)
    assert (rows[tokyo.pk].reason, rows[tokyo.pk].not_before) == ("quiet_hours", at(2026, 6, 1, 23))
    # LA is capped until its next day, and then the SMS waits for 08:00 there (15:00 UTC).
    assert (rows[la.pk].reason, rows[la.pk].not_before) == ("capped", at(2026, 6, 2, 15))
    deliveries_send(delivery_ids=[rows[tokyo.pk].pk], now=at(2026, 6, 1, 23))
    assert deliveries(campaign)[tokyo.pk].status == S.SENT


@pytest.mark.django_db
def test_a_capped_message_is_skipped_when_the_campaign_does_not_defer(outbox: Path) -> None:
    ada = ContactFactory.create()
    grant(ada)
    now = at(2026, 6, 10, 12)
    _sent_before(ada, channel="email", when=now - dt.timedelta(hours=1), n=3)
    campaign = campaign_for([ada], defer_when_capped=False)
    campaign_launch(campaign=campaign, enqueue=False, now=now)
    deliveries_send(delivery_ids=[deliveries(campaign)[ada.pk].pk], now=now)
    row = deliveries(campaign)[ada.pk]
    assert (row.status, row.reason) == (S.SKIPPED, "capped")


@pytest.mark.django_db
@pytest.mark.parametrize("fields", [{"priority": 10}, {"is_transactional": True}])
def test_top_priority_and_transactional_messages_bypass_the_cap(
    outbox: Path, fields: dict[str, Any]
) -> None:
    ada = ContactFactory.create()
    grant(ada)
    now = at(2026, 6, 10, 12)
    _sent_before(ada, channel="email", when=now - dt.timedelta(hours=1), n=3)
    campaign = campaign_for([ada], **fields)
    campaign_launch(campaign=campaign, enqueue=False, now=now)
    deliveries_send(delivery_ids=[deliveries(campaign)[ada.pk].pk], now=now)
    assert deliveries(campaign)[ada.pk].status == S.SENT


@pytest.mark.django_db
def test_two_messages_to_one_contact_in_one_batch_respect_the_cap(outbox: Path) -> None:
    FrequencyCap.objects.filter(channel="email").update(max_messages=1, days=1)
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([], kind=Campaign.Kind.TRIGGERED)
    first = Delivery.objects.create(
        campaign=campaign,
        contact=ada,
        channel="email",
        occurrence="a",
        variant=campaign.variants.get(),
    )
    second = Delivery.objects.create(
        campaign=campaign,
        contact=ada,
        channel="email",
        occurrence="b",
        variant=campaign.variants.get(),
    )
    deliveries_send(delivery_ids=[first.pk, second.pk], now=at(2026, 6, 10, 12))
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.status, second.status, second.reason) == (S.SENT, S.DEFERRED, "capped")
