"""Two beat processes at once, one of them SIGKILLed mid-tick and started again: every slot of
an every-minute recurring campaign fires once, no slot is missed, nobody gets a slot twice.

A deployment may run beat twice by mistake (two hosts, a restart overlapping the old process)
and beat may die at any moment. Both beats here read the same declared periodic tasks
(`crm setup-periodic-tasks`, django-celery-beat's DatabaseScheduler), start in phase so that each
minute their two `campaigns_start_due` ticks reach two worker processes together, and one beat
is killed just as it starts sending a tick's tasks and started again (it then finds its tasks
overdue and sends them at once: a third tick in that minute). Exactly once rests on the
database: one Delivery per (campaign, occurrence, contact) and the claim before each send.

The beats start early in a minute: their 60-second interval then never drifts across a minute
boundary within the test. (Over hours it would: an every-minute sweep that drifts from :59.99 to
:00.01 skips one minute, so a crontab selecting consecutive minutes can miss a slot; slots a
minute or more apart are caught up, as `campaigns_start_due` launches the latest due slot.)
"""

from __future__ import annotations

import datetime as dt
import io
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from campaigns.models import Campaign, Delivery, FrequencyCap
from campaigns.services.sweeps import occurrence_key
from tests.campaigns.dispatch_helpers import campaign_for
from tests.faults.helpers import Beat, RedisServer, Worker, contacts_with_consent
from tests.worker import wait_for

CONTACTS = 300
SLOTS = 4
START_TICK = "campaigns: start scheduled"  # the periodic task's name, as beat logs it


def _minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _wait_for_early_in_a_minute() -> None:
    while not 2 <= timezone.now().second <= 15:
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_two_beats_one_killed_mid_tick_fire_each_of_4_minute_slots_once_per_contact(
    tmp_path: Path, fake_provider: Any
) -> None:
    contacts = contacts_with_consent(CONTACTS, prefix="beat")
    every_minute = CrontabSchedule.objects.create(
        minute="*", hour="*", day_of_week="*", day_of_month="*", month_of_year="*", timezone="UTC"
    )
    campaign = campaign_for(
        contacts,
        kind=Campaign.Kind.RECURRING,
        crontab=every_minute,
        status=Campaign.Status.SCHEDULED,
    )
    # The default cap (3 marketing emails in 7 days) would rightly hold the 4th slot back:
    # this test counts slots fired, not caps.
    FrequencyCap.objects.update(is_active=False)
    call_command("crm", "setup-periodic-tasks", stdout=io.StringIO())
    # As on a deployment that has been running for a while: every interval task is overdue,
    # so both beats send their first tick as soon as they start.
    PeriodicTask.objects.update(last_run_at=timezone.now() - dt.timedelta(hours=1))
    redis = RedisServer(tmp_path / "redis", appendonly=True).start()
    env = {"CELERY_BROKER_URL": redis.url}
    workers = [
        Worker(tmp_path, fake_provider.url, name=name, **env).start() for name in ("w1", "w2")
    ]
    beats = [Beat(tmp_path, name=name, **env) for name in ("beat-a", "beat-b")]
    try:
        _wait_for_early_in_a_minute()
        first_slot = _minute(timezone.now())
        for beat in beats:
            beat.start()
        killed = beats[0]
        # Mid-tick: as soon as beat A logs the first task of its second tick, before it has
        # sent the rest or saved when it ran.
        wait_for(lambda: killed.sent(START_TICK) >= 2, timeout=150, what="beat A's 2nd tick")
        killed.kill()
        time.sleep(3)
        killed.start()
        last_slot = first_slot + dt.timedelta(minutes=SLOTS - 1)
        wait_for(
            lambda: (
                Delivery.objects.filter(
                    campaign=campaign, occurrence=occurrence_key(last_slot)
                ).count()
                == CONTACTS
            ),
            timeout=SLOTS * 60 + 120,
            what=f"the slot {occurrence_key(last_slot)} launched",
        )
        stopped_at = timezone.now()
        for beat in beats:
            beat.stop()
        wait_for(
            lambda: (
                not Delivery.objects.filter(
                    campaign=campaign, status__in=["queued", "deferred", "sending"]
                ).exists()
            ),
            timeout=300,
            what="every delivery sent",
        )
    finally:
        for beat in beats:
            beat.stop()
        for worker in workers:
            worker.stop()
        redis.stop()

    # The beats were stopped within the last slot's minute, so no later slot could fire.
    assert _minute(stopped_at) == last_slot, "the machine was too slow to stop in time"
    expected = [occurrence_key(first_slot + dt.timedelta(minutes=n)) for n in range(SLOTS)]
    rows = list(Delivery.objects.filter(campaign=campaign).values_list("pk", "occurrence"))
    per_slot = Counter(occurrence for _, occurrence in rows)
    statuses = Counter(Delivery.objects.filter(campaign=campaign).values_list("status", flat=True))
    # What the provider accepted, per delivery (the delivery id travels in anymail metadata).
    accepted = Counter(
        r.json()["Metadata"]["delivery_id"] for r in fake_provider.requests if r.path == "/email"
    )
    slot_of = {str(pk): occurrence for pk, occurrence in rows}
    accepted_per_slot = Counter(slot_of[pk] for pk in accepted)
    ticks = {beat.name: beat.sent(START_TICK) for beat in beats}
    logs = "".join(worker.logs() for worker in workers)
    sweeps_run = len(re.findall(r"campaigns_start_due\[[^\]]+\] succeeded", logs))
    print(
        f"\n{SLOTS} every-minute slots, {CONTACTS} contacts, two beats ({ticks} start ticks, "
        f"beat A killed mid-tick and restarted): deliveries per slot {dict(per_slot)}, "
        f"provider accepted per slot {dict(accepted_per_slot)}, "
        f"{sum(1 for n in accepted.values() if n > 1)} sent twice, "
        f"{sweeps_run} start sweeps run"
    )
    assert sorted(per_slot) == expected, "a slot missed or an extra one fired"
    assert per_slot == {slot: CONTACTS for slot in expected}
    assert statuses == {"sent": CONTACTS * SLOTS}
    assert set(accepted) == set(slot_of) and max(accepted.values()) == 1
    assert accepted_per_slot == per_slot
    assert "raised unexpected" not in logs and "Traceback" not in logs
