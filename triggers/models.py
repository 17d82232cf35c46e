"""Trigger rules, their version history, the firing ledger and the evaluation queue. The
database is the state of record; durable_rules only matches (docs/triggers.md)."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from crm.models import Contact
from triggers.types import RuleSnapshot

CONDITIONS_EXAMPLE = (
    '[{"id": "event_count", "event": "product_viewed", "count": 3, "hours": 24}, '
    '{"id": "event_absent", "event": "order_completed", "hours": 24}]'
)
ACTIONS_EXAMPLE = (
    '[{"id": "send_campaign", "campaign": "win-back-sms", "fallback_campaign": "win-back-email"}]'
)


class TriggerRule(models.Model):
    class MatchMode(models.TextChoices):
        ALL = "all", "All conditions hold"
        ANY = "any", "Any condition holds"

    class Reentry(models.TextChoices):
        ONCE_EVER = "once_ever", "Once per contact, ever"
        ONCE_PER_DAYS = "once_per_days", "At most once per contact every N days"
        EVERY_TIME = "every_time", "Every time (once per new activity of the contact)"

    name = models.CharField(max_length=200, help_text="e.g. Browse abandonment")
    slug = models.SlugField(
        max_length=100, unique=True, help_text="Stable name for YAML and commands, e.g. win-back."
    )
    enabled = models.BooleanField(
        default=False, help_text="Only enabled rules reach the engine, e.g. on once reviewed."
    )
    description = models.TextField(blank=True, help_text="What the rule is for, in plain words.")
    conditions = models.JSONField(
        default=list,
        blank=True,
        help_text=f"A list of conditions from the registry, e.g. {CONDITIONS_EXAMPLE}",
    )
    match_mode = models.CharField(
        "match when",
        max_length=3,
        choices=MatchMode.choices,
        default=MatchMode.ALL,
        help_text="all: every condition must hold; any: one is enough.",
    )
    actions = models.JSONField(
        default=list,
        blank=True,
        help_text=f"What happens on a match, in order, e.g. {ACTIONS_EXAMPLE}",
    )
    reentry = models.CharField(
        "re-entry",
        max_length=16,
        choices=Reentry.choices,
        default=Reentry.ONCE_PER_DAYS,
        help_text="How often one contact may fire this rule, e.g. once_per_days.",
    )
    reentry_days = models.PositiveIntegerField(
        "re-entry days",
        null=True,
        blank=True,
        help_text="For once_per_days: the cooldown in days, e.g. 7.",
    )
    priority = models.IntegerField(
        default=0, help_text="Higher runs first when several rules match one contact, e.g. 10."
    )
    active_from = models.DateTimeField(
        "active from", null=True, blank=True, help_text="No firing before, e.g. 2026-03-01 00:00."
    )
    active_until = models.DateTimeField(
        "active until", null=True, blank=True, help_text="No firing after, e.g. 2026-03-31 23:59."
    )
    audience_segment = models.ForeignKey(
        "segments.Segment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="trigger_rules",
        verbose_name="audience segment",
        help_text="Optional: only its current members can fire, e.g. email-subscribers.",
    )
    version = models.PositiveIntegerField(
        default=0, editable=False, help_text="Bumped on every saved change, e.g. 3."
    )
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        ordering = ("-priority", "slug")
        verbose_name = "trigger rule"

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> RuleSnapshot:
        """The rule as data: what versions store, YAML holds and the compiler reads."""
        return {
            "name": self.name,
            "slug": self.slug,
            "enabled": self.enabled,
            "description": self.description,
            "conditions": list(self.conditions or []),
            "match_mode": self.match_mode,
            "actions": list(self.actions or []),
            "reentry": self.reentry,
            "reentry_days": self.reentry_days,
            "priority": self.priority,
            "active_from": self.active_from.isoformat() if self.active_from else None,
            "active_until": self.active_until.isoformat() if self.active_until else None,
            "audience_segment": (
                self.audience_segment.slug if self.audience_segment is not None else None
            ),
        }


class TriggerRuleVersion(models.Model):
    """One saved edit of a rule, as it was after the edit."""

    rule = models.ForeignKey(TriggerRule, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField(help_text="e.g. 3")
    snapshot = models.JSONField(help_text='The rule after the edit, e.g. {"name": ..., ...}')
    edited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    edited_via = models.CharField(
        max_length=50, blank=True, help_text="admin, import, or a command's name."
    )
    edited_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        ordering = ("-version",)
        verbose_name = "rule version"
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["rule", "version"], name="triggers_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} v{self.version}"


class TriggerFiring(models.Model):
    """A match, recorded once per (rule, contact, occurrence) whatever retries or second
    workers do; actions run after commit and record their outcome here."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running actions"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    rule = models.ForeignKey(TriggerRule, on_delete=models.CASCADE, related_name="firings")
    rule_version = models.PositiveIntegerField(help_text="The rule's version that matched.")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="trigger_firings")
    occurrence_key = models.CharField(
        max_length=64,
        help_text="From the re-entry policy: 'once', a date such as 2026-03-01, or 'a<epoch>' "
        "(the contact's latest activity) for every_time.",
    )
    fired_at = models.DateTimeField(default=dj_timezone.now, db_index=True)
    source = models.CharField(max_length=20, blank=True, help_text="events, segments, sweep.")
    facts = models.JSONField(default=dict, help_text='The snapshot that matched, e.g. {"cid": 7}')
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    outcome = models.JSONField(
        default=dict,
        blank=True,
        help_text='What each action did, e.g. {"actions": [{"id": "send_campaign", ...}]}',
    )
    error = models.TextField(blank=True)
    batch = models.UUIDField(editable=False, help_text="The evaluation that wrote this row.")
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-fired_at", "-id")
        verbose_name = "firing"
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["rule", "contact", "occurrence_key"], name="triggers_firing_once"
            ),
        ]
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["rule", "contact", "-fired_at"], name="triggers_firing_last_idx"),
            models.Index(fields=["rule", "-fired_at"], name="triggers_firing_rule_idx"),
            models.Index(fields=["batch"], name="triggers_firing_batch_idx"),
            models.Index(
                fields=["status"],
                condition=Q(status__in=["pending", "failed"]),
                name="triggers_firing_open_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.rule_id} → {self.contact_id} ({self.occurrence_key})"


class TriggerPendingContact(models.Model):
    """A contact waiting for evaluation: coalesces bursts of events into one evaluation.
    Deliberately not a foreign key: a vanished contact is just skipped."""

    contact_id = models.BigIntegerField(primary_key=True)
    source = models.CharField(max_length=20, default="events")
    queued_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        # The drain takes the oldest first, and every enqueue reads the oldest entry.
        indexes = [
            models.Index(fields=["queued_at", "contact_id"], name="trigger_pending_order_idx")
        ]

    def __str__(self) -> str:
        return f"contact {self.contact_id} queued at {self.queued_at:%H:%M:%S}"
