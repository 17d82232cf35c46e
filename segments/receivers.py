"""What segments does when crm reports something. Connected in SegmentsConfig.ready()."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.dispatch import receiver

from crm.signals import contact_erased, contact_merged, contact_merging, events_ingested
from segments import services

# Long enough for a burst of ingest requests to queue their contacts into one drain.
DRAIN_DELAY_SECONDS = 1


def _queue(contact_ids: list[int]) -> None:
    from segments.tasks import segments_refresh_pending

    if services.segment_contacts_queue(contact_ids=contact_ids):
        transaction.on_commit(
            lambda: segments_refresh_pending.apply_async(countdown=DRAIN_DELAY_SECONDS)
        )


@receiver(events_ingested, dispatch_uid="segments.events_ingested")
def on_events_ingested(sender: Any, *, contact_ids: list[int], **kwargs: Any) -> None:
    _queue(list(contact_ids))


@receiver(contact_merging, dispatch_uid="segments.contact_merging")
def on_contact_merging(sender: Any, *, survivor_id: int, duplicate_id: int, **kwargs: Any) -> None:
    services.segment_memberships_merge(survivor_id=survivor_id, duplicate_id=duplicate_id)


@receiver(contact_merged, dispatch_uid="segments.contact_merged")
def on_contact_merged(sender: Any, *, survivor_id: int, **kwargs: Any) -> None:
    # The survivor now carries both histories: its memberships may have changed.
    _queue([survivor_id])


@receiver(contact_erased, dispatch_uid="segments.contact_erased")
def on_contact_erased(sender: Any, *, contact_id: int, **kwargs: Any) -> None:
    # Erased contacts belong to no segment: the next drain closes their memberships.
    _queue([contact_id])
