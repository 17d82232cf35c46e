"""What journeys does when segments or crm report something. Connected in
JourneysConfig.ready(). Both signals are sent after the sender's transaction commits."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from crm.signals import events_ingested
from journeys.models import Enrollment
from segments.signals import membership_changed


@receiver(membership_changed, dispatch_uid="journeys.segment_entry")
def on_segment_entered(
    sender: Any, *, segment_id: int, entered_ids: list[int], **kwargs: Any
) -> None:
    """Contacts entering a journey's entry segment enter the journey, set-based. Only those
    announced while the journey takes contacts: members from before it was enabled (or
    before the segment became its entry) were announced then, so they never flood in."""
    from journeys.entry import enrollments_start
    from journeys.models import Journey

    if not entered_ids:
        return
    for journey in Journey.objects.filter(
        entry_segment_id=segment_id, enabled=True, status=Journey.Status.ACTIVE
    ).exclude(current_version=None):
        enrollments_start(
            journey=journey,
            entrants=[(contact_id, {}) for contact_id in entered_ids],
            source="segment",
        )


@receiver(events_ingested, dispatch_uid="journeys.events_ingested.waits")
def on_events_ingested_waits(
    sender: Any, *, contact_ids: list[int], event_types: set[str], **kwargs: Any
) -> None:
    """A wait_for step awaiting one of the ingested types moves on within a second, not at
    its timeout: the check runs on a worker, only when some such enrollment exists."""
    from journeys.tasks import journeys_waits_check

    types = sorted(event_types)
    awaited = Enrollment.objects.filter(
        status=Enrollment.Status.ACTIVE, contact_id__in=list(contact_ids), awaiting_event__in=types
    )
    if awaited.exists():
        journeys_waits_check.delay_on_commit(list(contact_ids), types)


@receiver(events_ingested, dispatch_uid="journeys.goal_check")
def on_events_ingested_goals(
    sender: Any, *, contact_ids: list[int], event_types: set[str], **kwargs: Any
) -> None:
    """An ingested event that is some journey's goal: its contacts are checked at once."""
    from core.batching import chunks
    from journeys.goals import goal_journeys_for
    from journeys.tasks import journeys_goals_check

    goals = goal_journeys_for(event_types) if event_types else []
    if not goals or not contact_ids:
        return
    for chunk in chunks(sorted(set(contact_ids)), 5000):
        journeys_goals_check.delay_on_commit(chunk, goals)
