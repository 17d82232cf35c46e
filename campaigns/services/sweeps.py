"""What beat runs every minute: start scheduled broadcasts and due recurring occurrences,
enqueue deliveries whose wait is over, and recover rows a lost worker left behind."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from campaigns.models import Campaign, Delivery
from campaigns.services.enqueue import CLAIMABLE, deliveries_enqueue
from campaigns.services.launch import DispatchError, campaign_launch
from campaigns.services.state import HOLDING
from core.keyset import keyset_pages
from core.zones import zone_or_utc

logger = logging.getLogger(__name__)
Status = Delivery.Status
# A recurring slot missed while beat was down is still launched if this recent.
RECURRING_CATCH_UP = dt.timedelta(hours=2)
SWEEP_CHUNK = 2000


@dataclass
class SweepResult:
    enqueued: int = 0
    requeued_lost: int = 0
    uncertain_lost: int = 0


def _id_pages(queryset: QuerySet[Delivery]) -> Iterator[list[int]]:
    return keyset_pages(queryset.values_list("pk", flat=True), size=SWEEP_CHUNK)


def deliveries_enqueue_due(*, now: dt.datetime | None = None) -> SweepResult:
    """Deliveries whose not_before has passed (local send time, quiet hours, caps, retry
    backoff) are made queued with no wait and enqueued in batches. Clearing not_before in
    the same conditional UPDATE keeps the next sweep from enqueueing them again."""
    now = now or timezone.now()
    result = SweepResult()
    active = Delivery.objects.exclude(campaign__status__in=[*HOLDING, Campaign.Status.CANCELLED])
    due = active.filter(status__in=CLAIMABLE, not_before__isnull=False, not_before__lte=now)
    for ids in _id_pages(due):
        with transaction.atomic():
            won = list(
                Delivery.objects.filter(
                    pk__in=ids, status__in=CLAIMABLE, not_before__lte=now
                ).values_list("pk", flat=True)
            )
            Delivery.objects.filter(pk__in=won).update(
                status=Status.QUEUED, not_before=None, updated_at=now
            )
            deliveries_enqueue(sorted(won))
            result.enqueued += len(won)

    # A worker lost mid-batch (killed, machine gone) leaves rows in sending. Those never
    # handed to the provider go back to the queue; those handed over may have gone out and
    # become uncertain, for a person to reconcile, never resent automatically.
    stale = now - dt.timedelta(minutes=settings.SEND_STALE_CLAIM_MINUTES)
    lost = Delivery.objects.filter(status=Status.SENDING, claimed_at__lt=stale)
    result.uncertain_lost = lost.filter(handed_over_at__isnull=False).update(
        status=Status.UNCERTAIN,
        error="The worker was lost during the provider call.",
        updated_at=now,
    )
    # Put back and enqueued at once: waiting for the quiet-spell pass below would hold a
    # killed worker's unsent messages for an hour.
    for ids in _id_pages(lost.filter(handed_over_at__isnull=True)):
        with transaction.atomic():
            requeued = Delivery.objects.filter(
                pk__in=ids, status=Status.SENDING, handed_over_at__isnull=True
            ).update(status=Status.QUEUED, claimed_at=None, updated_at=now)
            deliveries_enqueue(ids)
            result.requeued_lost += requeued
            result.enqueued += requeued

    # Queued rows whose task vanished (a broker lost with its messages) are enqueued again
    # after a long quiet spell; a duplicate task is harmless, it claims nothing.
    quiet = now - dt.timedelta(minutes=settings.SEND_REQUEUE_AFTER_MINUTES)
    forgotten = active.filter(status=Status.QUEUED, not_before__isnull=True, updated_at__lt=quiet)
    for ids in _id_pages(forgotten):
        with transaction.atomic():
            Delivery.objects.filter(pk__in=ids).update(updated_at=now)
            deliveries_enqueue(ids)
            result.enqueued += len(ids)
    return result


def campaigns_start_due(*, now: dt.datetime | None = None) -> list[str]:
    """Launch scheduled broadcasts whose time has come and the latest due slot of each
    recurring campaign; returns "slug/occurrence" for each launch."""
    now = now or timezone.now()
    launched = []
    due = Campaign.objects.filter(
        kind=Campaign.Kind.BROADCAST, status=Campaign.Status.SCHEDULED, scheduled_at__lte=now
    )
    for campaign in due:
        if _launch(campaign, "", now):
            launched.append(f"{campaign.slug}/")
    recurring = Campaign.objects.filter(
        kind=Campaign.Kind.RECURRING,
        status__in=[Campaign.Status.SCHEDULED, Campaign.Status.SENDING],
        crontab__isnull=False,
    ).select_related("crontab")
    for campaign in recurring:
        slot = recurring_slot(campaign=campaign, now=now)
        if slot is None:
            continue
        occurrence = occurrence_key(slot)
        # Launching a slot twice is harmless (unique deliveries), but computing a large
        # audience every minute is not: a slot is done once a launch of it has finished.
        # One that died part way (a lost worker) is launched again and completes.
        if campaign.last_launched_occurrence == occurrence:
            continue
        if _launch(campaign, occurrence, now):
            Campaign.objects.filter(pk=campaign.pk).update(last_launched_occurrence=occurrence)
            launched.append(f"{campaign.slug}/{occurrence}")
    return launched


def _launch(campaign: Campaign, occurrence: str, now: dt.datetime) -> bool:
    try:
        campaign_launch(campaign=campaign, occurrence=occurrence, now=now)
    except DispatchError:
        # Visible in the worker log; the campaign stays as it is for a person to fix.
        logger.exception("could not launch campaign %s", campaign.slug)
        return False
    return True


def occurrence_key(slot: dt.datetime) -> str:
    """The slot's UTC date-time, e.g. 2026-03-08T10:00Z: one occurrence per slot."""
    return slot.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%MZ")


def recurring_slot(*, campaign: Campaign, now: dt.datetime) -> dt.datetime | None:
    """The latest minute at or before `now` (within the catch-up window) that the campaign's
    crontab selects, read in the crontab's own time zone."""
    crontab = campaign.crontab
    if crontab is None:
        return None
    schedule = crontab.schedule
    zone = zone_or_utc(str(crontab.timezone))
    minute = now.replace(second=0, microsecond=0)
    earliest = now - RECURRING_CATCH_UP
    while minute >= earliest:
        local = minute.astimezone(zone)
        if (
            local.minute in schedule.minute
            and local.hour in schedule.hour
            and local.day in schedule.day_of_month
            and local.month in schedule.month_of_year
            and local.isoweekday() % 7 in schedule.day_of_week
        ):
            return minute
        minute -= dt.timedelta(minutes=1)
    return None
