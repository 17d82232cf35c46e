"""What segments does when crm reports something. SegmentsConfig.ready() imports this module,
the decorators connect the receivers."""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from crm.signals import contact_erased, contact_merged, contact_merging, events_ingested
from segments import services
from segments.models.analytics import (
    ContactCluster,
    ContactLifecycle,
    ContactPrediction,
    ContactRFM,
)

# Long enough for a burst of ingest requests to queue their contacts into one drain.
DRAIN_DELAY_SECONDS = 1


def _queue(contact_ids: list[int]) -> None:
    from segments.tasks import segments_refresh_pending

    if services.segment_contacts_queue(contact_ids=contact_ids):
        segments_refresh_pending.apply_async_on_commit(countdown=DRAIN_DELAY_SECONDS)


@receiver(events_ingested, dispatch_uid="segments.events_ingested")
def on_events_ingested(sender: Any, *, contact_ids: list[int], **kwargs: Any) -> None:
    _queue(list(contact_ids))


@receiver(contact_merging, dispatch_uid="segments.analytics.drop_duplicate_analytics")
def drop_duplicate_analytics(*, survivor_id: int, duplicate_id: int, **kwargs: Any) -> None:
    """Keeps the per-contact analytics rows out of a merge's way.

    crm.services.merge moves every row of the duplicate to the survivor; a one-to-one analytics
    row would collide with the survivor's. They are derived data, so the duplicate's are dropped
    and the next analytics run recomputes the survivor from the merged history.
    """
    for model in (ContactRFM, ContactLifecycle, ContactPrediction):
        model.objects.filter(contact_id=duplicate_id).delete()
    # Runs where both were clustered would collide on (run, contact); the survivor keeps its own.
    survivor_runs = ContactCluster.objects.filter(contact_id=survivor_id).values("run_id")
    ContactCluster.objects.filter(contact_id=duplicate_id, run_id__in=survivor_runs).delete()


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
