"""Sending a batch of deliveries: claim by conditional UPDATE, last-moment checks, render,
throttle, hand over, send through the channel's backend, record what the provider said.

Exactly once rests on two things: a Delivery is unique per (campaign, occurrence, contact)
in the database, and a worker sends only the rows its own conditional UPDATE moved from
queued/deferred to sending. A task run twice, a batch enqueued twice or two workers given
the same ids all end in one send per delivery. docs/campaigns.md tells the whole story.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from campaigns.channels.base import ChannelBackend, ProviderError, channel_backend
from campaigns.models import Campaign, Delivery
from campaigns.services import checks
from campaigns.services.consent_actions import provider_opt_out_record
from campaigns.services.enqueue import CLAIMABLE, due_q
from campaigns.services.state import HOLDING, campaign_finish_if_done, campaign_status
from campaigns.services.throttle import throttle_acquire
from core.keyset import keyset_pages
from crm.models import Contact, Suppression
from crm.normalise import address_hash

logger = logging.getLogger(__name__)

Status = Delivery.Status
Reason = Delivery.Reason
CampaignStatus = Campaign.Status
STATUS_CHECK_SECONDS = 2.0


@dataclass
class SendReport:
    claimed: int = 0
    sent: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcomes": dict(self.outcomes)}


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


def _release(ids: Sequence[int], *, status: str, now: dt.datetime) -> int:
    """Give back claimed rows that never reached the provider: queued again while the
    campaign holds, skipped when it was cancelled."""
    rows = Delivery.objects.filter(
        pk__in=list(ids), status=Status.SENDING, handed_over_at__isnull=True
    )
    if status == CampaignStatus.CANCELLED:
        return rows.update(status=Status.SKIPPED, reason=Reason.CANCELLED, updated_at=now)
    return rows.update(status=Status.QUEUED, claimed_at=None, updated_at=now)


def _stops_sending(status: str) -> bool:
    return status in HOLDING or status == CampaignStatus.CANCELLED


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
    moment = now or timezone.now()
    campaign = Campaign.objects.get(pk=campaign_id)
    if campaign.status in HOLDING:
        return
    if campaign.status == CampaignStatus.CANCELLED:
        Delivery.objects.filter(pk__in=ids, status__in=CLAIMABLE).update(
            status=Status.SKIPPED, reason=Reason.CANCELLED, updated_at=moment
        )
        return
    claimed = deliveries_claim(delivery_ids=ids, now=moment)
    report.claimed += len(claimed)
    if not claimed:
        return
    status = campaign_status(campaign_id)
    if _stops_sending(status):
        _release(claimed, status=status, now=moment)
        return
    deliveries = list(
        Delivery.objects.filter(pk__in=claimed).select_related("variant__template").order_by("pk")
    )
    decisions = checks.deliveries_check(campaign=campaign, deliveries=deliveries, now=moment)
    report.outcomes.update(_apply_held_back([d for d in decisions if d.action != "send"], moment))
    to_send = [d for d in decisions if d.action == "send"]
    if not to_send:
        campaign_finish_if_done(campaign=campaign, now=moment)
        return
    _BatchSender(campaign=campaign, fixed_now=now, report=report).run(to_send)


class _BatchSender:
    """Sends the checked deliveries of one campaign through its channel's backend, watching
    the campaign's status as it goes."""

    def __init__(
        self, *, campaign: Campaign, fixed_now: dt.datetime | None, report: SendReport
    ) -> None:
        self.campaign = campaign
        self.fixed_now = fixed_now
        self.report = report
        self.backend: ChannelBackend[Any] = channel_backend(campaign.channel)
        self.recent: dict[int, Any] = {}
        self.tokens = 0
        self.last_status_check = time.monotonic()

    def now(self) -> dt.datetime:
        return self.fixed_now or timezone.now()

    def run(self, to_send: list[checks.Decision]) -> None:
        from campaigns.rendering import recent_context_for

        self.recent = recent_context_for([d.delivery.contact_id for d in to_send])
        self.backend.open()
        try:
            for index, decision in enumerate(to_send):
                if self._released_rest(to_send[index:]):
                    return
                self._send_one(decision, remaining=len(to_send) - index)
        finally:
            self.backend.close()
        campaign_finish_if_done(campaign=self.campaign, now=self.now())

    def _released_rest(self, rest: list[checks.Decision]) -> bool:
        """Every few seconds: a campaign paused or cancelled meanwhile gets the rest back."""
        if time.monotonic() - self.last_status_check <= STATUS_CHECK_SECONDS:
            return False
        self.last_status_check = time.monotonic()
        status = campaign_status(self.campaign.pk)
        if not _stops_sending(status):
            return False
        ids = [d.delivery.pk for d in rest]
        _release(ids, status=status, now=timezone.now())
        self.report.outcomes[f"released:{status}"] += len(ids)
        return True

    def _build(self, delivery: Delivery, contact: Contact) -> Any:
        """The message for one delivery, or None when it was skipped as unrenderable."""
        from campaigns.rendering import RenderError, render_message
        from campaigns.tracking.recording import tracked_links_store

        if delivery.variant is None:
            _skip_one(delivery, Reason.RENDER_ERROR, "no variant to render", self.report)
            return None
        try:
            rendered = render_message(
                template=delivery.variant.template,
                contact=contact,
                campaign=self.campaign,
                delivery_id=delivery.pk,
                recent=self.recent.get(contact.pk, {}),
                variant_name=delivery.variant.name,
            )
            if rendered.links:
                tracked_links_store(delivery_id=delivery.pk, links=rendered.links)
            return self.backend.build(
                delivery=delivery, campaign=self.campaign, contact=contact, rendered=rendered
            )
        except RenderError as exc:
            _skip_one(delivery, Reason.RENDER_ERROR, str(exc), self.report)
            return None

    def _send_one(self, decision: checks.Decision, *, remaining: int) -> None:
        delivery, contact, campaign = decision.delivery, decision.contact, self.campaign
        assert contact is not None
        delivery.to_address = decision.address
        message = self._build(delivery, contact)
        if message is None:
            return
        if self.tokens <= 0:
            self.tokens = throttle_acquire(channel=campaign.channel, want=remaining)
        self.tokens -= 1
        moment = self.now()
        if not self._handed_over(decision, moment):
            return
        delivery.attempts += 1
        try:
            provider_id = self.backend.send(message, delivery_id=delivery.pk)
        except ProviderError as exc:
            outcome = _record_failure(
                delivery=delivery, campaign=campaign, contact=contact, exc=exc, now=moment
            )
            self.report.outcomes[outcome] += 1
            return
        _mark_sent(delivery_id=delivery.pk, provider_id=provider_id, sent_at=self.now())
        self.report.sent += 1
        self.report.outcomes["sent"] += 1

    def _handed_over(self, decision: checks.Decision, moment: dt.datetime) -> bool:
        """The batch was checked when it was claimed; an unsubscribe, bounce or erasure that
        committed since then must still stop this message. Marked handed over before the
        provider is called: a worker lost after this leaves an uncertain delivery, one lost
        before it a delivery that is simply queued again."""
        delivery, contact = decision.delivery, decision.contact
        assert contact is not None
        stopped = checks.delivery_hand_over(
            delivery_id=delivery.pk,
            contact_id=contact.pk,
            channel=self.campaign.channel,
            purpose=self.campaign.purpose,
            address=decision.address,
            moment=moment,
        )
        if stopped is None:
            return True
        if stopped[0]:
            _skip_one(delivery, stopped[0], stopped[1], self.report)
        else:
            logger.warning("delivery %s: %s", delivery.pk, stopped[1])
            self.report.outcomes["not_claimed"] += 1
        return False


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
    due = (
        Delivery.objects.filter(campaign=campaign, status__in=CLAIMABLE)
        .filter(due_q(now or timezone.now()))
        .values_list("pk", flat=True)
    )
    for ids in keyset_pages(due, size=settings.SEND_BATCH_SIZE):
        batch = deliveries_send(delivery_ids=ids, now=now)
        total.claimed += batch.claimed
        total.sent += batch.sent
        total.outcomes.update(batch.outcomes)
        if on_batch is not None:
            on_batch(batch)
    return total
