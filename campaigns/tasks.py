"""Celery tasks of the dispatch pipeline: load, call the service, done. Routed to the
"dispatch" queue by settings.CELERY_TASK_ROUTES."""

from __future__ import annotations

from typing import Any

from campaigns.models import Campaign
from campaigns.services import launch, send, sweeps
from core.tasks import shared_task


@shared_task
def deliveries_send(delivery_ids: list[int]) -> dict[str, Any]:
    """One batch (about SEND_BATCH_SIZE ids): claim, check, render, send, record."""
    return send.deliveries_send(delivery_ids=delivery_ids).as_dict()


@shared_task
def campaign_launch(campaign_id: int, occurrence: str = "") -> int:
    """Admin's "send now": audience to deliveries, batches enqueued."""
    campaign = Campaign.objects.get(pk=campaign_id)
    return launch.campaign_launch(campaign=campaign, occurrence=occurrence).enqueued


@shared_task
def deliveries_enqueue_due() -> int:
    """Every minute: deferred and backed-off deliveries whose time has come."""
    return sweeps.deliveries_enqueue_due().enqueued


@shared_task
def campaigns_start_due() -> int:
    """Every minute: scheduled broadcasts and recurring occurrences that are due."""
    return len(sweeps.campaigns_start_due())


@shared_task
def ab_decide_due() -> int:
    """Every few minutes: A/B tests whose declared horizon is reached are decided once and
    the winner is sent to the rest of the audience (docs/ab-testing.md)."""
    from campaigns.abtest.winner import campaigns_decide_due

    return len(campaigns_decide_due())


@shared_task
def tracking_hits_classify() -> int:
    """Every few seconds: raw click and open hits labelled, Responses and events written."""
    from campaigns.tracking.classify import tracking_hits_classify as classify

    return classify().hits
