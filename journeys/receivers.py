"""What journeys does when crm reports something. Connected in JourneysConfig.ready(). The
signal is sent after the ingest commits."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from crm.signals import events_ingested
from journeys.models import Enrollment


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
