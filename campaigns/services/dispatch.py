"""The dispatch pipeline: launch (audience → Delivery rows → batches enqueued after commit),
claim by conditional UPDATE, last-moment checks, render, throttle, send, record.

Exactly once rests on two things: a Delivery is unique per (campaign, occurrence, contact)
in the database, and a worker sends only the rows its own conditional UPDATE moved from
queued/deferred to sending. A task run twice, a batch enqueued twice or two workers given
the same ids all end in one send per delivery. docs/campaigns.md tells the whole story.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Q
from django.utils import timezone

from campaigns.channels.base import ProviderError, channel_backend
from campaigns.models import Campaign, Delivery, Variant
from campaigns.services import audience, checks
from campaigns.services.assignment import WINNER_OCCURRENCE, assign, in_test_share
from campaigns.services.consent_actions import provider_opt_out_record
from campaigns.services.scheduling import contact_zone, local_time_on_or_after
from campaigns.services.throttle import throttle_acquire
from crm.models import Contact, Suppression
from crm.normalise import address_hash

logger = logging.getLogger(__name__)

Status = Delivery.Status
Reason = Delivery.Reason
CampaignStatus = Campaign.Status
CLAIMABLE = (Status.QUEUED, Status.DEFERRED)
# Campaign statuses in which workers leave deliveries alone (they stay queued/deferred).
HOLDING = (CampaignStatus.PAUSED, CampaignStatus.DRAFT)
STATUS_CHECK_SECONDS = 2.0
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
class SendReport:
    claimed: int = 0
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcomes": dict(self.outcomes)}


# --- Enqueueing ------------------------------------------------------------------------------


def _chunks(ids: Sequence[int], size: int) -> Iterable[list[int]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def _enqueue(ids: Sequence[int]) -> int:
    """Publish send tasks after the surrounding transaction commits (immediately outside
    one), so a worker never looks for a row that is not yet visible."""
    from campaigns.tasks import deliveries_send

    batches = 0
    for chunk in _chunks(ids, settings.SEND_BATCH_SIZE):
        transaction.on_commit(functools.partial(deliveries_send.delay, chunk))
        batches += 1
    return batches


# --- Launch ----------------------------------------------------------------------------------


def _variants(campaign: Campaign) -> list[tuple[int, int]]:
    variants = list(campaign.variants.order_by("pk").values_list("pk", "weight"))
    if not variants or sum(weight for _, weight in variants) <= 0:
        raise DispatchError(
            f"Campaign {campaign.slug!r} has no variant with a weight above 0: add one."
        )
    return variants


def _due_q(now: dt.datetime) -> Q:
    return Q(not_before__isnull=True) | Q(not_before__lte=now)


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
    if campaign.status == CampaignStatus.CANCELLED:
        raise DispatchError(f"Campaign {campaign.slug!r} is cancelled.")
    if campaign.audience_id is None:
        raise DispatchError(f"Campaign {campaign.slug!r} has no audience segment to send to.")
    _check_test_share(campaign)
    variants = _variants(campaign) if winner_variant_id is None else [(winner_variant_id, 1)]
    Campaign.objects.filter(
        pk=campaign.pk,
        status__in=[CampaignStatus.DRAFT, CampaignStatus.SCHEDULED, CampaignStatus.DONE],
    ).update(status=CampaignStatus.SENDING, finished_at=None, updated_at=now)
    Campaign.objects.filter(pk=campaign.pk, started_at__isnull=True).update(started_at=now)
    campaign.refresh_from_db(fields=["status", "started_at", "finished_at"])

    result = LaunchResult(campaign_id=campaign.pk, occurrence=occurrence)
    start_from = max(now, campaign.scheduled_at) if campaign.scheduled_at else now
    local_times: dict[str, dt.datetime] = {}
    for chunk in audience.audience_chunks(campaign=campaign, chunk_size=LAUNCH_CHUNK):
        contact_ids = [contact_id for contact_id, _ in chunk]
        with transaction.atomic():
            existing = set(
                Delivery.objects.filter(
                    campaign=campaign, occurrence=occurrence, contact_id__in=contact_ids
                ).values_list("contact_id", flat=True)
            )
            rows = []
            for contact_id, zone_name in chunk:
                if contact_id in existing:
                    continue
                if campaign.test_share < 100 and (winner_variant_id is None) != in_test_share(
                    campaign_id=campaign.pk, contact_id=contact_id, test_share=campaign.test_share
                ):
                    # The test share gets the test; the rest waits for the winner send.
                    continue
                choice = assign(
                    campaign_id=campaign.pk,
                    contact_id=contact_id,
                    variants=variants,
                    holdout_percent=campaign.holdout_percent,
                )
                row = Delivery(
                    campaign=campaign,
                    contact_id=contact_id,
                    occurrence=occurrence,
                    channel=campaign.channel,
                    variant_id=choice.variant_id,
                    created_at=now,
                )
                if choice.is_holdout:
                    row.is_holdout = True
                    row.status, row.reason = Status.SKIPPED, Reason.HOLDOUT
                    result.holdout += 1
                elif campaign.send_at_local_time is not None:
                    if zone_name not in local_times:
                        local_times[zone_name] = local_time_on_or_after(
                            start_from, contact_zone(zone_name), campaign.send_at_local_time
                        )
                    at = local_times[zone_name]
                    if at > now:
                        row.status, row.reason, row.not_before = (
                            Status.DEFERRED,
                            Reason.LOCAL_TIME,
                            at,
                        )
                        result.waiting_local_time += 1
                rows.append(row)
            Delivery.objects.bulk_create(rows, batch_size=500, ignore_conflicts=True)
            result.created += len(rows)
            due = list(
                Delivery.objects.filter(
                    campaign=campaign,
                    occurrence=occurrence,
                    contact_id__in=contact_ids,
                    status=Status.QUEUED,
                )
                .filter(_due_q(now))
                .order_by("pk")
                .values_list("pk", flat=True)
            )
            result.enqueued += len(due)
            if enqueue:
                result.batches += _enqueue(due)
    campaign_finish_if_done(campaign=campaign, now=now)
    logger.info("launched %s/%s: %s", campaign.slug, occurrence or "-", result)
    return result


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
    now = timezone.now()
    choice = assign(
        campaign_id=campaign.pk,
        contact_id=contact_id,
        variants=_variants(campaign),
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
    elif audience.contact_excluded(campaign=campaign, contact_id=contact_id):
        defaults.update(status=Status.SKIPPED, reason=Reason.EXCLUDED)
    elif campaign.send_at_local_time is not None:
        at = local_time_on_or_after(
            now, contact_zone(contact["timezone"]), campaign.send_at_local_time
        )
        if at > now:
            defaults.update(status=Status.DEFERRED, reason=Reason.LOCAL_TIME, not_before=at)
    with transaction.atomic():
        delivery, created = Delivery.objects.get_or_create(
            campaign=campaign, occurrence=occurrence, contact_id=contact_id, defaults=defaults
        )
        if created and delivery.status == Status.QUEUED:
            _enqueue([delivery.pk])
    return delivery


# --- Claim, check, send ----------------------------------------------------------------------


def deliveries_claim(*, delivery_ids: Sequence[int], now: dt.datetime) -> list[int]:
    """The conditional UPDATE: queued/deferred and due → sending, in one statement that
    returns the ids this caller won (PostgreSQL and SQLite ≥ 3.35 both have RETURNING).
    Another worker running the same statement on the same ids gets none of them."""
    if not delivery_ids:
        return []
    table = connection.ops.quote_name(Delivery._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(now)
    placeholders = ", ".join(["%s"] * len(delivery_ids))
    sql = (
        f"UPDATE {table} SET status = %s, claimed_at = %s, handed_over_at = NULL, "  # noqa: S608
        f"updated_at = %s WHERE id IN ({placeholders}) AND status IN (%s, %s) "
        "AND (not_before IS NULL OR not_before <= %s) RETURNING id"
    )
    params = [Status.SENDING, stamp, stamp, *delivery_ids, *CLAIMABLE, stamp]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted(row[0] for row in cursor.fetchall())


def _release(ids: Sequence[int], *, campaign_status: str, now: dt.datetime) -> int:
    """Give back claimed rows that never reached the provider: queued again while the
    campaign holds, skipped when it was cancelled."""
    rows = Delivery.objects.filter(
        pk__in=list(ids), status=Status.SENDING, handed_over_at__isnull=True
    )
    if campaign_status == CampaignStatus.CANCELLED:
        return rows.update(status=Status.SKIPPED, reason=Reason.CANCELLED, updated_at=now)
    return rows.update(status=Status.QUEUED, claimed_at=None, updated_at=now)


def _campaign_status(campaign_id: int) -> str:
    return str(Campaign.objects.filter(pk=campaign_id).values_list("status", flat=True).get())


def _backoff_seconds(attempts: int) -> float:
    delay = min(settings.SEND_RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), 3600)
    return float(delay) * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not security


def _apply_held_back(decisions: list[checks.Decision], now: dt.datetime) -> Counter[str]:
    counts: Counter[str] = Counter()
    changed = []
    for decision in decisions:
        delivery = decision.delivery
        delivery.status = Status.SKIPPED if decision.action == "skip" else Status.DEFERRED
        delivery.reason = decision.reason
        delivery.not_before = decision.until
        delivery.error = decision.error
        delivery.updated_at = now
        if decision.action == "defer":
            delivery.claimed_at = None
        changed.append(delivery)
        counts[f"{delivery.status}:{decision.reason}"] += 1
    Delivery.objects.bulk_update(
        changed,
        ["status", "reason", "not_before", "error", "updated_at", "claimed_at"],
        batch_size=500,
    )
    return counts


def _record_failure(
    *,
    delivery: Delivery,
    campaign: Campaign,
    contact: Contact,
    exc: ProviderError,
    now: dt.datetime,
) -> str:
    """Write what a provider error means for this delivery; return the outcome's name."""
    error = str(exc)[:2000]
    rows = Delivery.objects.filter(pk=delivery.pk, status=Status.SENDING)
    if exc.uncertain:
        rows.update(status=Status.UNCERTAIN, error=error, updated_at=now)
        return "uncertain"
    if exc.opted_out and exc.opt_out is not None:
        provider_opt_out_record(
            channel=campaign.channel,
            contact=contact,
            address=delivery.to_address or contact.phone or "",
            opt_out=exc.opt_out,
            proof={"provider": exc.provider, "error_code": exc.code, "delivery_id": delivery.pk},
        )
        rows.update(status=Status.FAILED, reason=Reason.NO_CONSENT, error=error, updated_at=now)
        return "failed:no_consent"
    if exc.permanent:
        Suppression.objects.get_or_create(
            channel=campaign.channel,
            address_hash=address_hash(campaign.channel, delivery.to_address),
            defaults={"reason": Suppression.Reason.INVALID, "note": f"provider: {error[:200]}"},
        )
        rows.update(
            status=Status.FAILED, reason=Reason.INVALID_ADDRESS, error=error, updated_at=now
        )
        return "failed:invalid_address"
    if exc.retryable and delivery.attempts < settings.SEND_MAX_ATTEMPTS:
        rows.update(
            status=Status.QUEUED,
            reason=Reason.PROVIDER_ERROR,
            error=error,
            claimed_at=None,
            handed_over_at=None,
            not_before=now + dt.timedelta(seconds=_backoff_seconds(delivery.attempts)),
            updated_at=now,
        )
        return "retry"
    rows.update(status=Status.FAILED, reason=Reason.PROVIDER_ERROR, error=error, updated_at=now)
    return "failed:provider_error"


def deliveries_send(*, delivery_ids: Sequence[int], now: dt.datetime | None = None) -> SendReport:
    """Claim, check, render, send and record a batch of delivery ids (of any campaigns)."""
    report = SendReport()
    by_campaign: dict[int, list[int]] = {}
    for pk, campaign_id in Delivery.objects.filter(pk__in=list(delivery_ids)).values_list(
        "pk", "campaign_id"
    ):
        by_campaign.setdefault(campaign_id, []).append(pk)
    for campaign_id, ids in sorted(by_campaign.items()):
        _send_campaign_batch(campaign_id=campaign_id, ids=ids, now=now, report=report)
    return report


def _send_campaign_batch(
    *, campaign_id: int, ids: list[int], now: dt.datetime | None, report: SendReport
) -> None:
    from campaigns.rendering import RenderError, recent_context_for, render_message

    fixed_now = now
    now = now or timezone.now()
    campaign = Campaign.objects.get(pk=campaign_id)
    if campaign.status in HOLDING:
        return
    if campaign.status == CampaignStatus.CANCELLED:
        Delivery.objects.filter(pk__in=ids, status__in=CLAIMABLE).update(
            status=Status.SKIPPED, reason=Reason.CANCELLED, updated_at=now
        )
        return
    claimed = deliveries_claim(delivery_ids=ids, now=now)
    report.claimed += len(claimed)
    if not claimed:
        return
    status = _campaign_status(campaign_id)
    if status in HOLDING or status == CampaignStatus.CANCELLED:
        _release(claimed, campaign_status=status, now=now)
        return
    deliveries = list(
        Delivery.objects.filter(pk__in=claimed).select_related("variant__template").order_by("pk")
    )
    decisions = checks.deliveries_check(campaign=campaign, deliveries=deliveries, now=now)
    report.outcomes.update(_apply_held_back([d for d in decisions if d.action != "send"], now))
    to_send = [d for d in decisions if d.action == "send"]
    if not to_send:
        campaign_finish_if_done(campaign=campaign, now=now)
        return
    recent = recent_context_for([d.delivery.contact_id for d in to_send])
    channel = channel_backend(campaign.channel)
    channel.open()
    tokens = 0
    last_status_check = time.monotonic()
    try:
        for index, decision in enumerate(to_send):
            delivery, contact = decision.delivery, decision.contact
            assert contact is not None
            if time.monotonic() - last_status_check > STATUS_CHECK_SECONDS:
                last_status_check = time.monotonic()
                status = _campaign_status(campaign_id)
                if status in HOLDING or status == CampaignStatus.CANCELLED:
                    rest = [d.delivery.pk for d in to_send[index:]]
                    _release(rest, campaign_status=status, now=timezone.now())
                    report.outcomes[f"released:{status}"] += len(rest)
                    return
            delivery.to_address = decision.address
            if delivery.variant is None:
                _skip_one(delivery, Reason.RENDER_ERROR, "no variant to render", report)
                continue
            try:
                rendered = render_message(
                    template=delivery.variant.template,
                    contact=contact,
                    campaign=campaign,
                    delivery_id=delivery.pk,
                    recent=recent.get(contact.pk, {}),
                )
                message = channel.build(
                    delivery=delivery, campaign=campaign, contact=contact, rendered=rendered
                )
            except RenderError as exc:
                _skip_one(delivery, Reason.RENDER_ERROR, str(exc), report)
                continue
            if tokens <= 0:
                tokens = throttle_acquire(channel=campaign.channel, want=len(to_send) - index)
            tokens -= 1
            moment = fixed_now or timezone.now()
            # The batch was checked when it was claimed; an unsubscribe, bounce or erasure
            # that committed since then must still stop this message. Marked handed over
            # before the provider is called: a worker lost after this leaves an uncertain
            # delivery, one lost before it a delivery that is simply queued again.
            stopped = checks.delivery_hand_over(
                delivery_id=delivery.pk,
                contact_id=contact.pk,
                channel=campaign.channel,
                purpose=campaign.purpose,
                address=decision.address,
                moment=moment,
            )
            if stopped is not None:
                if stopped[0]:
                    _skip_one(delivery, stopped[0], stopped[1], report)
                else:
                    logger.warning("delivery %s: %s", delivery.pk, stopped[1])
                    report.outcomes["not_claimed"] += 1
                continue
            delivery.attempts += 1
            try:
                provider_id = channel.send(message, delivery_id=delivery.pk)
            except ProviderError as exc:
                outcome = _record_failure(
                    delivery=delivery, campaign=campaign, contact=contact, exc=exc, now=moment
                )
                report.outcomes[outcome] += 1
                continue
            _mark_sent(
                delivery_id=delivery.pk,
                provider_id=provider_id,
                sent_at=fixed_now or timezone.now(),
            )
            report.sent += 1
            report.outcomes["sent"] += 1
    finally:
        channel.close()
    campaign_finish_if_done(campaign=campaign, now=fixed_now or timezone.now())


# Fixed SQL: building the same ORM UPDATE for each message cost more than running it.
def _mark_sent(*, delivery_id: int, provider_id: str, sent_at: dt.datetime) -> None:
    """The provider took it. On PostgreSQL this commit does not wait for its WAL flush
    (synchronous_commit off, for this transaction only): should the database server itself
    crash in the next moment, the row stays handed over and becomes uncertain, never resent,
    so nothing is lost that the flush would have kept, and each message waits for one flush
    (its handed-over mark) instead of two."""
    table = connection.ops.quote_name(Delivery._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(sent_at)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
        cursor.execute(
            f"UPDATE {table} SET status = %s, reason = '', error = '', "  # noqa: S608
            "provider_message_id = %s, sent_at = %s, updated_at = %s "
            "WHERE id = %s AND status = %s",
            [Status.SENT, provider_id, stamp, stamp, delivery_id, Status.SENDING],
        )


def _skip_one(delivery: Delivery, reason: str, error: str, report: SendReport) -> None:
    Delivery.objects.filter(pk=delivery.pk, status=Status.SENDING).update(
        status=Status.SKIPPED,
        reason=reason,
        error=error[:2000],
        to_address=delivery.to_address,
        updated_at=timezone.now(),
    )
    report.outcomes[f"skipped:{reason}"] += 1


# --- Campaign state --------------------------------------------------------------------------


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
    enqueued = 0
    last_id = 0
    while True:
        ids = list(
            Delivery.objects.filter(campaign=campaign, status__in=CLAIMABLE, pk__gt=last_id)
            .filter(_due_q(now))
            .order_by("pk")
            .values_list("pk", flat=True)[:LAUNCH_CHUNK]
        )
        if not ids:
            return enqueued
        _enqueue(ids)
        enqueued += len(ids)
        last_id = ids[-1]


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


# --- In-process sending (no worker) ----------------------------------------------------------


def campaign_drain(
    *,
    campaign: Campaign,
    on_batch: Callable[[SendReport], None] | None = None,
    now: dt.datetime | None = None,
) -> SendReport:
    """Send every due delivery of the campaign in this process, batch by batch, until none
    is left: `campaigns send SLUG --inline` on setups without a worker."""
    total = SendReport()
    last_id = 0
    while True:
        moment = now or timezone.now()
        ids = list(
            Delivery.objects.filter(campaign=campaign, status__in=CLAIMABLE, pk__gt=last_id)
            .filter(_due_q(moment))
            .order_by("pk")
            .values_list("pk", flat=True)[: settings.SEND_BATCH_SIZE]
        )
        if not ids:
            return total
        last_id = ids[-1]
        batch = deliveries_send(delivery_ids=ids, now=now)
        total.claimed += batch.claimed
        total.sent += batch.sent
        total.outcomes.update(batch.outcomes)
        if on_batch is not None:
            on_batch(batch)
