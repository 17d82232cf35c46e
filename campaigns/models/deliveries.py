"""What happened: one delivery per message and recipient, and the responses to it."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Coalesce
from django.utils import timezone as dj_timezone

from campaigns.models.campaigns import Campaign, Variant
from crm.models import Channel, Contact


class Delivery(models.Model):
    """One message to one contact for one occurrence of a campaign, written before anything
    is queued. Unique per (campaign, occurrence, contact): the variant is a function of
    (campaign, contact), so it adds nothing to uniqueness, and the occurrence lets a recurring
    or triggered campaign reach the same person again (a date, or a trigger firing's key)."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        DELIVERED = "delivered", "Delivered"
        FAILED = "failed", "Failed"
        SKIPPED = "skipped", "Skipped"
        DEFERRED = "deferred", "Deferred"
        UNCERTAIN = "uncertain", "Uncertain (provider may have it)"

    class Reason(models.TextChoices):
        NO_CONSENT = "no_consent", "No consent"
        SUPPRESSED = "suppressed", "Suppressed address"
        CAPPED = "capped", "Frequency cap"
        QUIET_HOURS = "quiet_hours", "Quiet hours"
        INVALID_ADDRESS = "invalid_address", "Invalid or missing address"
        RENDER_ERROR = "render_error", "Template error"
        ERASED = "erased", "Contact erased"
        PAUSED = "paused", "Contact paused marketing"
        HOLDOUT = "holdout", "Holdout group"
        EXCLUDED = "excluded", "In an exclusion segment"
        CANCELLED = "cancelled", "Campaign cancelled"
        LOCAL_TIME = "local_time", "Waiting for local send time"
        THROTTLED = "throttled", "Waiting for throughput"
        PROVIDER_ERROR = "provider_error", "Provider error"

    campaign = models.ForeignKey(Campaign, on_delete=models.PROTECT, related_name="deliveries")
    variant = models.ForeignKey(
        Variant, on_delete=models.PROTECT, null=True, blank=True, related_name="deliveries"
    )
    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="deliveries")
    occurrence = models.CharField(
        max_length=100,
        default="",
        blank=True,
        help_text="'' for a one-off broadcast, a date for a recurring run, a firing key for a "
        "triggered send.",
    )
    channel = models.CharField(max_length=10, choices=Channel.choices)
    is_holdout = models.BooleanField("holdout", default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    reason = models.CharField(max_length=20, choices=Reason.choices, blank=True)
    to_address = models.CharField(max_length=254, blank=True)
    provider_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    error = models.TextField(blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    not_before = models.DateTimeField(
        null=True, blank=True, help_text="Not sent before this (local time, deferral, backoff)."
    )
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)
    claimed_at = models.DateTimeField(null=True, blank=True)
    handed_over_at = models.DateTimeField(
        "handed to provider",
        null=True,
        blank=True,
        help_text="Set just before the provider is called: a delivery left sending with this "
        "set may have gone out (uncertain); without it, it never left and is queued again.",
    )
    tracked_links = models.JSONField(
        default=list,
        blank=True,
        help_text="The links of the message as sent, by the index their tracked URL names "
        '(campaigns.tracking), e.g. [{"url": "https://shop.example.com/", "target": '
        '"https://shop.example.com/?utm_source=cadence&cadence_cid=..."}].',
    )
    sent_at = models.DateTimeField(null=True, blank=True, db_index=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "deliveries"
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["campaign", "occurrence", "contact"], name="campaigns_delivery_once"
            ),
        ]
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["status", "not_before"], name="campaigns_delivery_due_idx"),
            models.Index(fields=["campaign", "status"], name="campaigns_delivery_prog_idx"),
            models.Index(
                fields=["contact", "channel", "sent_at"],
                name="campaigns_delivery_cap_idx",
                condition=Q(sent_at__isnull=False),
            ),
            # The A/B report's per-arm counts read only this index, never the wide rows.
            models.Index(
                fields=[
                    "campaign",
                    "variant",
                    "is_holdout",
                    "occurrence",
                    "status",
                    "sent_at",
                    "created_at",
                    "delivered_at",
                ],
                name="campaigns_delivery_ab_idx",
            ),
            # Last-touch attribution: a contact's latest touch before a goal event is the
            # first entry of a backward scan of this index (ordered as the query orders), and
            # its filter columns come with it.
            models.Index(
                F("contact"),
                Coalesce("sent_at", "created_at"),
                F("id"),
                F("sent_at"),
                F("campaign"),
                name="campaigns_delivery_touch_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.campaign} → {self.contact_id} ({self.status})"


class Response(models.Model):
    """Something a recipient or their provider did after a delivery: delivered, opened,
    clicked, bounced, complained, unsubscribed, replied. Deduplicated by the provider's
    event id."""

    class Kind(models.TextChoices):
        DELIVERED = "delivered", "Delivered"
        OPENED = "opened", "Opened"
        CLICKED = "clicked", "Clicked"
        BOUNCED_HARD = "bounced_hard", "Hard bounce"
        BOUNCED_SOFT = "bounced_soft", "Soft bounce"
        COMPLAINED = "complained", "Complained"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        FAILED = "failed", "Failed"
        REPLIED = "replied", "Replied"

    class Label(models.TextChoices):
        HUMAN = "human", "Human"
        SCANNER = "scanner", "Scanner"
        MACHINE_OPEN = "machine_open", "Machine open (privacy proxy)"
        # An ESP's open or click for a campaign that tracks its own: kept, never counted.
        NOT_COUNTED = "not_counted", "Not counted (own tracking on)"

    delivery = models.ForeignKey(
        Delivery, on_delete=models.PROTECT, null=True, blank=True, related_name="responses"
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, null=True, blank=True, related_name="responses"
    )
    campaign = models.ForeignKey(
        Campaign, on_delete=models.PROTECT, null=True, blank=True, related_name="responses"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    url = models.URLField(max_length=2000, blank=True, help_text="The link clicked.")
    body = models.TextField(blank=True, help_text="An SMS reply's text.")
    provider = models.CharField(max_length=50, blank=True, help_text="e.g. postmark, twilio")
    provider_event_id = models.CharField(max_length=255, null=True, blank=True)
    payload = models.JSONField(default=dict, blank=True, help_text="The provider's event, as sent.")
    label = models.CharField(
        max_length=12,
        choices=Label.choices,
        default=Label.HUMAN,
        help_text="Who did it (docs/tracking.md): only human opens and clicks are counted, "
        "e.g. scanner for a security gateway's click seconds after delivery.",
    )
    label_reasons = models.JSONField(
        default=list,
        blank=True,
        help_text='Why the label was given, e.g. ["too_soon", "link_burst"].',
    )
    occurred_at = models.DateTimeField(default=dj_timezone.now)
    received_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["provider", "provider_event_id"],
                condition=Q(provider_event_id__isnull=False),
                name="campaigns_response_event_once",
            ),
        ]
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["campaign", "kind"], name="campaigns_response_kind_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} ({self.provider})"


class TrackingHit(models.Model):
    """One request to a tracked link or open pixel, written raw as it came (one INSERT, after
    the answer went out) and labelled later in bulk by campaigns.tracking.classify."""

    class Kind(models.TextChoices):
        CLICK = "click", "Click"
        OPEN = "open", "Open"

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="hits")
    link_index = models.IntegerField(
        null=True, blank=True, help_text="Index in Delivery.tracked_links; empty for an open."
    )
    kind = models.CharField(max_length=5, choices=Kind.choices)
    method = models.CharField(max_length=8, help_text="e.g. GET, HEAD")
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=500, blank=True)
    occurred_at = models.DateTimeField(default=dj_timezone.now)
    label = models.CharField(
        max_length=12,
        choices=Response.Label.choices,
        blank=True,
        help_text="Empty until classified, then e.g. scanner.",
    )
    label_reasons = models.JSONField(default=list, blank=True, help_text='e.g. ["head_request"]')
    processed = models.BooleanField(default=False)

    class Meta:
        indexes: ClassVar[list[Any]] = [
            models.Index(
                fields=["id"],
                name="campaigns_hit_todo_idx",
                condition=Q(processed=False),
            ),
            models.Index(fields=["delivery", "occurred_at"], name="campaigns_hit_delivery_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.delivery_id}/{self.link_index} ({self.label or 'new'})"
