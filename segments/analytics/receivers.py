"""Keeps the per-contact analytics rows out of a merge's way.

crm.services.merge moves every row of the duplicate to the survivor; a one-to-one analytics
row would collide with the survivor's. They are derived data, so the duplicate's are dropped
and the next analytics run recomputes the survivor from the merged history.
"""

from __future__ import annotations

from typing import Any

from django.dispatch import receiver

from crm.signals import contact_merging


@receiver(contact_merging, dispatch_uid="segments.analytics.drop_duplicate_analytics")
def drop_duplicate_analytics(*, survivor_id: int, duplicate_id: int, **kwargs: Any) -> None:
    from segments.models.analytics import (
        ContactCluster,
        ContactLifecycle,
        ContactPrediction,
        ContactRFM,
    )

    for model in (ContactRFM, ContactLifecycle, ContactPrediction):
        model.objects.filter(contact_id=duplicate_id).delete()
    # Runs where both were clustered would collide on (run, contact); the survivor keeps its own.
    survivor_runs = ContactCluster.objects.filter(contact_id=survivor_id).values("run_id")
    ContactCluster.objects.filter(contact_id=duplicate_id, run_id__in=survivor_runs).delete()
