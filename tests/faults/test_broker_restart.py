"""The broker (Redis) killed in the middle of a send and started again on the same port: the
backlog drains, no message is lost, none is sent twice.

What a deployment does, and what each test shows:
- Redis with its append-only file on (`appendonly yes`, fsync every second: what we
  recommend for the broker). The queued send tasks survive the restart; the worker reconnects
  and drains them. A task whose removal or acknowledgement fell in the last second before the
  crash comes back and runs again: harmless, it claims nothing already sent.
- Redis without persistence (or a new, empty one). The queued tasks are gone; the rows stay
  queued in the database. Beat's every-minute sweep (`deliveries_enqueue_due`) enqueues queued
  rows untouched for SEND_REQUEUE_AFTER_MINUTES (60 by default, an hour late; 1 here so the
  test waits a minute or two), and the worker sends them.

Everything is real: redis-server, a Celery worker (solo pool) and `celery beat` with the
DatabaseScheduler and the declared periodic tasks, the anymail Postmark backend and the fake
provider over HTTP. The test process publishes only the launch, on a connection to the test's
Redis (the app's configured broker stays as it is); the worker does the rest, as in production.
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command

from campaigns import tasks
from campaigns.models import Campaign, Delivery
from tests.faults.helpers import (
    Beat,
    RedisServer,
    Worker,
    accepted_per_address,
    broadcast,
    contacts_with_consent,
    send_task_to,
    statuses,
)
from tests.worker import wait_for

COUNT = 3000
PENDING = ("queued", "deferred", "sending")


def _sweep_enqueued(worker: Worker) -> int:
    """Deliveries the every-minute sweep enqueued, summed from the worker's log."""
    pattern = r"deliveries_enqueue_due\[[^\]]+\] succeeded in [\d.]+s: (\d+)"
    return sum(int(n) for n in re.findall(pattern, worker.logs()))


def _restart_redis_mid_send(tmp_path: Path, fake: Any, *, appendonly: bool) -> dict[str, int]:
    contacts = contacts_with_consent(COUNT, prefix="broker")
    campaign = broadcast(contacts)
    call_command("crm", "setup-periodic-tasks", stdout=io.StringIO())
    fake.behaviour.delay_seconds = 0.005
    redis = RedisServer(tmp_path / "redis", appendonly=appendonly).start()
    env = {"CELERY_BROKER_URL": redis.url, "SEND_REQUEUE_AFTER_MINUTES": "1"}
    worker = Worker(tmp_path, fake.url, **env).start()
    beat = Beat(tmp_path, **env).start()
    try:
        send_task_to(redis.url, tasks.campaign_launch, campaign.pk)
        wait_for(lambda: len(fake.requests) >= COUNT // 3, timeout=300, what="a third sent")
        redis.kill()
        killed_at = len(fake.requests)
        time.sleep(3)  # long enough for the worker and beat to notice
        redis.start()
        backlog = redis.queue_length("dispatch")
        restarted = time.monotonic()
        wait_for(
            lambda: not Delivery.objects.filter(campaign=campaign, status__in=PENDING).exists(),
            timeout=600,
            what="every delivery to reach a final state",
        )
        drained_in = time.monotonic() - restarted
    finally:
        beat.stop()
        worker.stop()
        redis.stop()
    received = accepted_per_address(fake)
    rows = {
        str(email): str(status)
        for email, status in Delivery.objects.filter(campaign=campaign).values_list(
            "contact__email", "status"
        )
    }
    # Lost: never reached a final state, or marked sent without the provider having it.
    lost = [a for a, s in rows.items() if s not in ("sent", "uncertain") or not received[a]]
    figures: dict[str, int] = {
        "killed_at": killed_at,
        "backlog_after_restart": backlog,
        "received": len(received),
        "duplicated": len([n for n in received.values() if n > 1]),
        "lost": len([a for a in lost if rows[a] != "uncertain"]),
        "uncertain": len([s for s in rows.values() if s == "uncertain"]),
        "sweep_enqueued": _sweep_enqueued(worker),
        "drained_in_seconds": round(drained_in),
    }
    print(
        f"\n{COUNT} sends, Redis ({'append-only file' if appendonly else 'no persistence'}) "
        f"killed after {killed_at} and restarted with {backlog} send tasks queued: "
        f"{figures['received']} received, {figures['duplicated']} duplicated, "
        f"{figures['lost']} lost, {figures['uncertain']} uncertain; the sweep enqueued "
        f"{figures['sweep_enqueued']}; drained {figures['drained_in_seconds']} s after restart"
    )
    assert statuses(campaign) == {"sent": COUNT}
    assert figures["duplicated"] == 0
    assert figures["lost"] == 0
    assert len(received) == COUNT
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DONE
    return figures


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_redis_with_append_only_file_killed_mid_send_of_3000_drains_0_lost_0_duplicated(
    tmp_path: Path, fake_provider: Any
) -> None:
    figures = _restart_redis_mid_send(tmp_path, fake_provider, appendonly=True)
    # The queue came back with the restart: the worker drained it, not the sweep.
    assert figures["backlog_after_restart"] > 0


@pytest.mark.slow
@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_redis_that_lost_its_queue_mid_send_of_3000_is_refilled_by_the_sweep_0_lost(
    tmp_path: Path, fake_provider: Any
) -> None:
    figures = _restart_redis_mid_send(tmp_path, fake_provider, appendonly=False)
    assert figures["backlog_after_restart"] == 0
    assert figures["sweep_enqueued"] > 0
