"""Launching a campaign: its audience becomes Delivery rows (one per contact and occurrence,
unique in the database), and the ones due now are enqueued in batches after each chunk
commits. Also the A/B winner's send to the rest of the audience, and the one delivery a
trigger firing asks for. docs/campaigns.md tells the whole story."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from campaigns.models import Campaign, Delivery, Variant
from campaigns.services import audience
from campaigns.services.assignment import WINNER_OCCURRENCE, assign, in_test_share
from campaigns.services.enqueue import deliveries_enqueue, due_q
from campaigns.services.scheduling import contact_zone, local_time_on_or_after
from campaigns.services.state import campaign_finish_if_done
from core.db import rows_insert_ignoring_conflicts
from crm.models import Contact

logger = logging.getLogger(__name__)

Status = Delivery.Status
Reason = Delivery.Reason
CampaignStatus = Campaign.Status
LAUNCH_CHUNK = 2000


class DispatchError(Exception):
    """A campaign cannot be launched as configured; the message says what to fix."""


@dataclass
class LaunchResult:
    campaign_id: int
    occurrence: str
    created: int = 0
    holdout: int = 0
    enqueued: int = 0
    waiting_local_time: int = 0
    batches: int = 0


@dataclass
class _LaunchPlan:
    """What every row of one launch shares."""

    campaign: Campaign
    occurrence: str
    now: dt.datetime
    start_from: dt.datetime
    variants: list[tuple[int, int]]
    winner_variant_id: int | None
    local_times: dict[str, dt.datetime] = field(default_factory=dict)


def campaign_variants(campaign: Campaign) -> list[tuple[int, int]]:
    """(variant id, weight) of each variant; DispatchError when no weight is above 0."""
    variants = list(campaign.variants.order_by("pk").values_list("pk", "weight"))
    if not variants or sum(weight for _, weight in variants) <= 0:
        raise DispatchError(
            f"Campaign {campaign.slug!r} has no variant with a weight above 0: add one."
        )
    return variants


def campaign_launch(
    *,
    campaign: Campaign,
    occurrence: str = "",
    now: dt.datetime | None = None,
    enqueue: bool = True,
    winner_variant_id: int | None = None,
) -> LaunchResult:
    """Write one Delivery per audience member (in keyset chunks, one transaction each) and
    enqueue the ones due now in batches after each chunk commits. Idempotent per occurrence:
    rows already there are left as they are (and re-enqueued while still queued).

    With enqueue=False nothing is published; `campaign_drain` then sends in-process.

    A/B test share (docs/ab-testing.md): when `campaign.test_share` is below 100 only that
    share of the audience (chosen by hash) is launched; `campaign_send_winner` later launches
    the rest with `winner_variant_id`, under occurrence "winner"."""
    now = now or timezone.now()
    _check_launchable(campaign)
    variants = (
        campaign_variants(campaign) if winner_variant_id is None else [(winner_variant_id, 1)]
    )
    _mark_sending(campaign, now)
    plan = _LaunchPlan(
        campaign=campaign,
        occurrence=occurrence,
        now=now,
        start_from=max(now, campaign.scheduled_at) if campaign.scheduled_at else now,
        variants=variants,
        winner_variant_id=winner_variant_id,
    )
    result = LaunchResult(campaign_id=campaign.pk, occurrence=occurrence)
    for chunk in audience.audience_chunks(campaign=campaign, chunk_size=LAUNCH_CHUNK):
        _launch_chunk(plan, chunk, result, enqueue=enqueue)
    campaign_finish_if_done(campaign=campaign, now=now)
    logger.info("launched %s/%s: %s", campaign.slug, occurrence or "-", result)
    return result


def _check_launchable(campaign: Campaign) -> None:
    if campaign.status == CampaignStatus.CANCELLED:
        raise DispatchError(f"Campaign {campaign.slug!r} is cancelled.")
    if campaign.audience_id is None and campaign.audience_list_id is None:
        raise DispatchError(
            f"Campaign {campaign.slug!r} has no audience (a segment or a static list) to send to."
        )
    _check_test_share(campaign)


def _mark_sending(campaign: Campaign, now: dt.datetime) -> None:
    Campaign.objects.filter(
        pk=campaign.pk,
        status__in=[CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.DONE],
    ).update(status=CampaignStatus.SENDING, finished_at=None, updated_at=now)
    Campaign.objects.filter(pk=campaign.pk, started_at__isnull=True).update(started_at=now)
    campaign.refresh_from_db(fields=["status", "started_at", "finished_at"])


def _launch_chunk(
    plan: _LaunchPlan,
    chunk: Sequence[tuple[int, str]],
    result: LaunchResult,
    *,
    enqueue: bool,
) -> None:
    campaign, occurrence = plan.campaign, plan.occurrence
    contact_ids = [contact_id for contact_id, _ in chunk]
    with transaction.atomic():
        existing = set(
            Delivery.objects.filter(
                campaign=campaign, occurrence=occurrence, contact_id__in=contact_ids
            ).values_list("contact_id", flat=True)
        )
        rows = [
            row
            for contact_id, zone_name in chunk
            if contact_id not in existing
            and (row := _new_delivery(plan, contact_id, zone_name, result)) is not None
        ]
        Delivery.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
        result.created += len(rows)
        due = list(
            Delivery.objects.filter(
                campaign=campaign,
                occurrence=occurrence,
                contact_id__in=contact_ids,
                status=Status.QUEUED,
            )
            .filter(due_q(plan.now))
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        result.enqueued += len(due)
        if enqueue:
            result.batches += deliveries_enqueue(due)


def _new_delivery(
    plan: _LaunchPlan, contact_id: int, zone_name: str, result: LaunchResult
) -> Delivery | None:
    """The row for one audience member, or None when the member waits for the winner."""
    campaign = plan.campaign
    if campaign.test_share < 100 and (plan.winner_variant_id is None) != in_test_share(
        campaign_id=campaign.pk, contact_id=contact_id, test_share=campaign.test_share
    ):
        # The test share gets the test; the rest waits for the winner send.
        return None
    choice = assign(
        campaign_id=campaign.pk,
        contact_id=contact_id,
        variants=plan.variants,
        holdout_percent=campaign.holdout_percent,
    )
    row = Delivery(
        campaign=campaign,
        contact_id=contact_id,
        occurrence=plan.occurrence,
        channel=campaign.channel,
        variant_id=choice.variant_id,
        created_at=plan.now,
    )
    if choice.is_holdout:
        row.is_holdout = True
        row.status, row.reason = Status.SKIPPED, Reason.HOLDOUT
        result.holdout += 1
    elif campaign.send_at_local_time is not None:
        if zone_name not in plan.local_times:
            plan.local_times[zone_name] = local_time_on_or_after(
                plan.start_from, contact_zone(zone_name), campaign.send_at_local_time
            )
        at = plan.local_times[zone_name]
        if at > plan.now:
            row.status, row.reason, row.not_before = Status.DEFERRED, Reason.LOCAL_TIME, at
            result.waiting_local_time += 1
    return row


def _check_test_share(campaign: Campaign) -> None:
    if campaign.test_share >= 100:
        return
    if campaign.kind != Campaign.Kind.BROADCAST:
        raise DispatchError(
            f"Campaign {campaign.slug!r}: a test share below 100 % works for broadcasts only; "
            "set test share to 100."
        )
    if campaign.test_horizon_at is None and not campaign.test_sample_per_variant:
        raise DispatchError(
            f"Campaign {campaign.slug!r} tests on {campaign.test_share} % of its audience but "
            "declares no test horizon: set the test horizon or the sample per variant, or the "
            "rest of the audience would never be sent."
        )


def campaign_send_winner(
    *,
    campaign: Campaign,
    variant: Variant,
    now: dt.datetime | None = None,
    enqueue: bool = True,
) -> LaunchResult:
    """Launch the rest of the audience (everyone outside the test share) with one variant,
    under occurrence "winner". Holdout contacts stay held out. Idempotent like any launch."""
    if variant.campaign_id != campaign.pk:
        raise DispatchError(f"Variant {variant.name!r} is not a variant of {campaign.slug!r}.")
    return campaign_launch(
        campaign=campaign,
        occurrence=WINNER_OCCURRENCE,
        now=now,
        enqueue=enqueue,
        winner_variant_id=variant.pk,
    )


def campaign_deliver_to_contact(
    *, campaign: Campaign, contact_id: int, occurrence: str
) -> Delivery | None:
    """One delivery for a trigger firing: get-or-create on (campaign, occurrence, contact),
    so a retry or replay returns the existing row and enqueues nothing. None when the
    campaign is a draft or cancelled, or the contact does not exist. Holdout, erased and
    excluded contacts get a skipped row with the reason, so the firing is accounted for."""
    if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.CANCELLED):
        logger.info(
            "not delivering %s to %s: campaign is %s", campaign.slug, contact_id, campaign.status
        )
        return None
    contact = Contact.objects.filter(pk=contact_id).values("is_erased", "timezone").first()
    if contact is None:
        return None
    defaults = _firing_defaults(campaign=campaign, contact_id=contact_id, contact=contact)
    with transaction.atomic():
        delivery, created = Delivery.objects.get_or_create(
            campaign=campaign, occurrence=occurrence, contact_id=contact_id, defaults=defaults
        )
        if created and delivery.status == Status.QUEUED:
            deliveries_enqueue([delivery.pk])
    return delivery


def campaign_deliver_to_contacts(
    *, campaign: Campaign, targets: Sequence[tuple[int, str]]
) -> dict[tuple[int, str], int] | None:
    """The batch sibling of campaign_deliver_to_contact, for journey sends: one delivery per
    (contact id, occurrence) in `targets`, inserted in bulk (a row already there is kept, so
    a retry delivers nothing twice), assigned and checked as a firing's is, the queued ones
    enqueued after commit. Returns {(contact id, occurrence): delivery id}, without contacts
    that no longer exist; None when the campaign is a draft or cancelled."""
    if campaign.status in (CampaignStatus.DRAFT, CampaignStatus.CANCELLED):
        logger.info("not delivering %s: campaign is %s", campaign.slug, campaign.status)
        return None
    contact_ids = sorted({contact_id for contact_id, _ in targets})
    contacts = {
        row["pk"]: row
        for row in Contact.objects.filter(pk__in=contact_ids).values("pk", "is_erased", "timezone")
    }
    if not contacts:
        return {}
    variants = campaign_variants(campaign)
    excluded = audience.contacts_excluded(campaign=campaign, contact_ids=contacts)
    now = timezone.now()
    rows = [
        _delivery_row(
            campaign=campaign,
            contact_id=contact_id,
            occurrence=occurrence,
            now=now,
            **_delivery_defaults(
                campaign=campaign,
                contact_id=contact_id,
                contact=contacts[contact_id],
                variants=variants,
                excluded=contact_id in excluded,
                now=now,
            ),
        )
        for contact_id, occurrence in targets
        if contact_id in contacts
    ]
    with transaction.atomic():
        # Ready-made rows, not bulk_create: its per-object, per-field preparation cost more
        # than the insert (a journey's send step creates one delivery per contact).
        rows_insert_ignoring_conflicts(Delivery, _ROW_COLUMNS, rows)
        # By occurrence alone: the unique (campaign, occurrence, contact) index answers it,
        # where adding "contact in (…)" makes SQLite scan.
        found = Delivery.objects.filter(
            campaign=campaign, occurrence__in={occurrence for _, occurrence in targets}
        ).values_list("pk", "contact_id", "occurrence", "status", "not_before")
        out: dict[tuple[int, str], int] = {}
        due = []
        wanted = set(targets)
        for pk, contact_id, occurrence, status, not_before in found:
            if (contact_id, occurrence) not in wanted:
                continue
            out[(contact_id, occurrence)] = pk
            if status == Status.QUEUED and (not_before is None or not_before <= now):
                due.append(pk)
        deliveries_enqueue(sorted(due))
    return out


_ROW_COLUMNS = (
    "campaign_id",
    "contact_id",
    "occurrence",
    "channel",
    "variant_id",
    "is_holdout",
    "status",
    "reason",
    "not_before",
    "to_address",
    "provider_message_id",
    "error",
    "attempts",
    "tracked_links",
    "created_at",
    "updated_at",
)


def _delivery_row(
    *,
    campaign: Campaign,
    contact_id: int,
    occurrence: str,
    now: dt.datetime,
    channel: str,
    variant_id: int | None,
    is_holdout: bool,
    status: str,
    created_at: dt.datetime,
    reason: str = "",
    not_before: dt.datetime | None = None,
) -> tuple[Any, ...]:
    """A Delivery row as _ROW_COLUMNS lists them, its values adapted for the database, with
    the model's defaults for the columns a new delivery leaves empty."""
    ops = connection.ops
    links = Delivery._meta.get_field("tracked_links").get_db_prep_save([], connection)
    return (
        campaign.pk,
        contact_id,
        occurrence,
        channel,
        variant_id,
        is_holdout,
        status,
        reason,
        ops.adapt_datetimefield_value(not_before),
        "",
        "",
        "",
        0,
        links,
        ops.adapt_datetimefield_value(created_at),
        ops.adapt_datetimefield_value(now),
    )


def _firing_defaults(
    *, campaign: Campaign, contact_id: int, contact: Mapping[str, Any]
) -> dict[str, Any]:
    return _delivery_defaults(
        campaign=campaign,
        contact_id=contact_id,
        contact=contact,
        variants=campaign_variants(campaign),
        excluded=audience.contact_excluded(campaign=campaign, contact_id=contact_id),
        now=timezone.now(),
    )


def _delivery_defaults(
    *,
    campaign: Campaign,
    contact_id: int,
    contact: Mapping[str, Any],
    variants: list[tuple[int, int]],
    excluded: bool,
    now: dt.datetime,
) -> dict[str, Any]:
    choice = assign(
        campaign_id=campaign.pk,
        contact_id=contact_id,
        variants=variants,
        holdout_percent=campaign.holdout_percent,
    )
    defaults: dict[str, Any] = {
        "channel": campaign.channel,
        "variant_id": choice.variant_id,
        "is_holdout": choice.is_holdout,
        "status": Status.QUEUED,
        "created_at": now,
    }
    if choice.is_holdout:
        defaults.update(status=Status.SKIPPED, reason=Reason.HOLDOUT)
    elif contact["is_erased"]:
        defaults.update(status=Status.SKIPPED, reason=Reason.ERASED)
    elif excluded:
        defaults.update(status=Status.SKIPPED, reason=Reason.EXCLUDED)
    elif campaign.send_at_local_time is not None:
        at = local_time_on_or_after(
            now, contact_zone(contact["timezone"]), campaign.send_at_local_time
        )
        if at > now:
            defaults.update(status=Status.DEFERRED, reason=Reason.LOCAL_TIME, not_before=at)
    return defaults
