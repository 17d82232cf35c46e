"""Celery tasks (routed to the "evaluation" queue): load, call the service, done."""

from __future__ import annotations

import datetime as dt

from core.tasks import shared_task
from journeys.engine.advance import enrollments_advance
from journeys.engine.due import due_advance, waits_check

# Batches one beat tick hands to other workers; the rest it advances itself.
HAND_OFF_MAX = 4


def _hand_off(ids: list[int], lease: dt.datetime) -> None:
    journeys_advance_batch.delay(ids, lease.isoformat())


@shared_task
def journeys_advance_due() -> int:
    """Beat, every 15 s, and whoever makes an enrollment due now: claim due enrollments in
    batches and advance them (full batches beyond the first go to other workers)."""
    report, _ = due_advance(hand_off=_hand_off, hand_off_max=HAND_OFF_MAX)
    return report.steps


@shared_task
def journeys_advance_batch(ids: list[int], lease: str) -> int:
    """Advance a batch claimed by journeys_advance_due; rows whose lease ran out meanwhile
    (claimed again by another worker) are left alone."""
    from django.utils import timezone

    report = enrollments_advance(ids, lease=dt.datetime.fromisoformat(lease), now=timezone.now())
    return report.steps


@shared_task
def journeys_waits_check(contact_ids: list[int], event_types: list[str]) -> int:
    """After an ingest: wait_for steps awaiting these events move on at once."""
    return waits_check(contact_ids=contact_ids, event_types=event_types).steps


@shared_task
def journeys_goals_check(
    contact_ids: list[int] | None = None, event_types: list[str] | None = None
) -> int:
    """Convert the active enrollments whose goal event exists: of `contact_ids` for goals on
    `event_types` (on ingest), or of every contact for every goal (the scheduled sweep, for
    goals reached while no worker ran). Returns how many converted."""
    from journeys.goals import goals_check

    return goals_check(contact_ids=contact_ids, event_types=event_types)
