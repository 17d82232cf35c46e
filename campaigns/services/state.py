"""A campaign's sending state: done, paused, resumed, cancelled, and its progress.

Workers read the campaign's status at their next claim and every few seconds mid-batch
(campaigns/services/send.py), so a change written here is obeyed within seconds without
touching the tasks already queued."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.services.enqueue import CLAIMABLE, deliveries_enqueue, due_q
from core.keyset import keyset_pages

Status = Delivery.Status
Reason = Delivery.Reason
CampaignStatus = Campaign.Status
# Campaign statuses in which workers leave deliveries alone (they stay queued/deferred).
HOLDING = (CampaignStatus.PAUSED, CampaignStatus.DRAFT)
RESUME_CHUNK = 2000


def campaign_status(campaign_id: int) -> str:
    """The campaign's status as the database has it now."""
    return str(Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).get())


def campaign_finish_if_done(*, campaign: Campaign, now: dt.datetime | None = None) -> bool:
    """A broadcast is done when none of its deliveries is queued, deferred or sending.
    Triggered and recurring campaigns stay sending: more occurrences will come."""
    if campaign.kind != Campaign.Kind.BROADCAST:
        return False
    pending = Delivery.objects.filter(
        campaign_id=campaign.pk, status__in=[*CLAIMABLE, Status.SENDING]
    ).exists()
    if pending:
        return False
    finished = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.SENDING).update(
        status=CampaignStatus.DONE, finished_at=now or timezone.now()
    )
    return bool(finished)


def campaign_pause(*, campaign: Campaign) -> bool:
    """Workers see it at their next claim and within seconds mid-batch; rows stay queued."""
    changed = Campaign.objects.filter(
        pk=campaign.pk, status__in=[CampaignStatus.SENDING, CampaignStatus.SCHEDULED]
    ).update(status=CampaignStatus.PAUSED, updated_at=timezone.now())
    campaign.refresh_from_db(fields=["status"])
    return bool(changed)


def campaign_resume(*, campaign: Campaign) -> int:
    """Back to sending (or scheduled, when a broadcast never started and its time is still
    ahead) and re-enqueue what is due; returns how many deliveries were enqueued."""
    now = timezone.now()
    waiting = (
        campaign.kind == Campaign.Kind.BROADCAST
        and campaign.started_at is None
        and campaign.scheduled_at is not None
        and campaign.scheduled_at > now
    )
    target = CampaignStatus.SCHEDULED if waiting else CampaignStatus.SENDING
    with transaction.atomic():
        changed = Campaign.objects.filter(pk=campaign.pk, status=CampaignStatus.PAUSED).update(
            status=target, updated_at=now
        )
        campaign.refresh_from_db(fields=["status"])
        if not changed or waiting:
            return 0
        return _enqueue_campaign_due(campaign=campaign, now=now)


def _enqueue_campaign_due(*, campaign: Campaign, now: dt.datetime) -> int:
    due = (
        Delivery.objects.filter(campaign=campaign, status__in=CLAIMABLE)
        .filter(due_q(now))
        .values_list("pk", flat=True)
    )
    enqueued = 0
    for ids in keyset_pages(due, size=RESUME_CHUNK):
        deliveries_enqueue(ids)
        enqueued += len(ids)
    return enqueued


def campaign_cancel(*, campaign: Campaign) -> int:
    """Cancelled for good: every queued or deferred delivery is skipped (reason cancelled)
    in one UPDATE; workers mid-batch stop within seconds. Returns the rows skipped."""
    now = timezone.now()
    with transaction.atomic():
        Campaign.objects.filter(pk=campaign.pk).exclude(status=CampaignStatus.CANCELLED).update(
            status=CampaignStatus.CANCELLED, finished_at=now, updated_at=now
        )
        campaign.refresh_from_db(fields=["status", "finished_at"])
        return Delivery.objects.filter(campaign=campaign, status__in=CLAIMABLE).update(
            status=Status.SKIPPED, reason=Reason.CANCELLED, updated_at=now
        )


def campaign_progress(*, campaign: Campaign) -> dict[str, Any]:
    """{"total", "by_status": {status: n}, "by_reason": {reason: n}, "rows": [...]}, from
    one GROUP BY over the campaign's deliveries."""
    rows = list(
        Delivery.objects.filter(campaign=campaign)
        .values("status", "reason")
        .annotate(n=Count("pk"))
        .order_by("status", "reason")
    )
    by_status: Counter[str] = Counter()
    by_reason: Counter[str] = Counter()
    for row in rows:
        by_status[row["status"]] += row["n"]
        if row["reason"]:
            by_reason[row["reason"]] += row["n"]
    return {
        "total": sum(by_status.values()),
        "by_status": dict(by_status),
        "by_reason": dict(by_reason),
        "rows": rows,
    }
