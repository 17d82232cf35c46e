"""Journeys, their immutable published versions, the enrollments that walk them and the
step-run ledger. The database holds every contact's place in a journey (docs/journeys.md):
one active enrollment per (journey, contact, entry key), enforced by a partial unique
constraint, and one ledger row per (enrollment, step, sequence), so a step happens once."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

STEPS_EXAMPLE = (
    '[{"id": "cool-off", "type": "wait", "minutes": 240}, '
    '{"id": "email-1", "type": "send", "campaign": "browse-abandonment"}]'
)
GOAL_WHERE_EXAMPLE = '[{"property": "category", "operator": "equals", "value": "kitchen"}]'


class VersionImmutable(Exception):
    """A published version is what enrolled contacts walk: it is never changed."""


class Journey(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused (contacts held in place)"

    class Reentry(models.TextChoices):
        ONCE_EVER = "once_ever", "Once per contact, ever"
        ONCE_PER_DAYS = "once_per_days", "At most once per contact every N days"
        ONCE_PER_KEY = "once_per_key", "Once per key of the entry event (e.g. per cart)"

    slug = models.SlugField(
        max_length=100, unique=True, help_text="Stable name for YAML and commands, e.g. win-back."
    )
    name = models.CharField(max_length=200, help_text="e.g. Browse follow-up")
    description = models.TextField(
        blank=True, help_text="What the journey is for, e.g. Nudge shoppers who looked, not bought."
    )
    enabled = models.BooleanField(
        default=False, help_text="Only enabled journeys take new contacts, e.g. on once reviewed."
    )
    status = models.CharField(
        max_length=10,
        choices=Status.choices,
        default=Status.ACTIVE,
        help_text="paused holds every contact at its step until resumed, e.g. active.",
    )
    reentry_mode = models.CharField(
        "re-entry",
        max_length=16,
        choices=Reentry.choices,
        default=Reentry.ONCE_EVER,
        help_text="How often one contact may enter, e.g. once_per_days.",
    )
    reentry_days = models.PositiveIntegerField(
        "re-entry days",
        null=True,
        blank=True,
        help_text="For once_per_days: days before the contact may enter again, e.g. 7.",
    )
    reentry_key = models.CharField(
        "re-entry key",
        max_length=64,
        blank=True,
        help_text="For once_per_key: the entry event's property that keys an enrollment, "
        "e.g. cart_id.",
    )
    goal_event = models.CharField(
        "goal event",
        max_length=100,
        blank=True,
        help_text="Reaching it exits the contact as converted, e.g. order_completed.",
    )
    goal_within_days = models.PositiveIntegerField(
        "goal within days",
        null=True,
        blank=True,
        help_text="Counts only this many days after entry, e.g. 7.",
    )
    goal_where = models.JSONField(
        "goal filters",
        default=list,
        blank=True,
        help_text=f"Property filters on the goal event, e.g. {GOAL_WHERE_EXAMPLE}",
    )
    entry_segment = models.ForeignKey(
        "segments.Segment",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="journeys",
        verbose_name="entry segment",
        help_text="Every contact entering this segment enters the journey, e.g. cart-abandoners.",
    )
    # RESTRICT, not PROTECT: a version may go only together with its journey.
    current_version = models.ForeignKey(
        "JourneyVersion",
        on_delete=models.RESTRICT,
        null=True,
        blank=True,
        related_name="+",
        editable=False,
        verbose_name="current version",
        help_text="The version new contacts enter; empty until the first publish, e.g. v2.",
    )
    created_at = models.DateTimeField(
        "created", default=dj_timezone.now, editable=False, help_text="e.g. 2026-03-01 09:00."
    )
    updated_at = models.DateTimeField(
        "updated", auto_now=True, help_text="Last saved change, e.g. 2026-03-02 10:30."
    )

    class Meta:
        ordering = ("slug",)
        verbose_name = "journey"

    def __str__(self) -> str:
        return self.name

    def snapshot(self) -> dict[str, Any]:
        """The journey in the normal form journeys/validation.py returns: what the YAML
        export writes and a save compares against to decide whether anything changed."""
        reentry: dict[str, Any] = {"mode": self.reentry_mode}
        if self.reentry_mode == self.Reentry.ONCE_PER_DAYS:
            reentry["days"] = self.reentry_days
        elif self.reentry_mode == self.Reentry.ONCE_PER_KEY:
            reentry["key"] = self.reentry_key
        goal: dict[str, Any] | None = None
        if self.goal_event:
            goal = {"event": self.goal_event, "within_days": self.goal_within_days}
            if self.goal_where:
                goal["where"] = list(self.goal_where)
        version = self.current_version
        return {
            "slug": self.slug,
            "name": self.name,
            "description": self.description,
            "enabled": self.enabled,
            "status": self.status,
            "reentry": reentry,
            "goal": goal,
            "entry_segment": self.entry_segment.slug if self.entry_segment else None,
            "steps": list(version.steps) if version is not None else [],
        }


class JourneyVersion(models.Model):
    journey = models.ForeignKey(
        Journey,
        on_delete=models.CASCADE,
        related_name="versions",
        help_text="The journey these steps belong to, e.g. browse-follow-up.",
    )
    number = models.PositiveIntegerField(
        help_text="Counts publishes, e.g. 1 for the first, then 2, 3."
    )
    steps = models.JSONField(help_text=f"The validated step tree, e.g. {STEPS_EXAMPLE}")
    structure_hash = models.CharField(
        "structure hash",
        max_length=64,
        help_text="SHA-256 of the steps: equal hashes, equal structure, e.g. 3f2a…",
    )
    published_at = models.DateTimeField(
        "published", default=dj_timezone.now, help_text="e.g. 2026-03-01 09:00."
    )
    published_by = models.CharField(
        "published by",
        max_length=150,
        blank=True,
        help_text="Who or what published it, e.g. alice (admin) or import.",
    )

    class Meta:
        ordering = ("journey", "-number")
        verbose_name = "journey version"
        constraints = [
            models.UniqueConstraint(fields=["journey", "number"], name="journeys_version_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.journey_id} v{self.number}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise VersionImmutable(
                f"version {self.number} is published; publish a new version instead"
            )
        super().save(*args, **kwargs)


class Enrollment(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        COMPLETED = "completed", "Completed (reached the end)"
        CONVERTED = "converted", "Converted (reached the goal)"
        EXITED = "exited", "Exited (an exit step or removed)"
        FAILED = "failed", "Failed (a step could not run)"

    journey = models.ForeignKey(
        Journey,
        on_delete=models.CASCADE,
        related_name="enrollments",
        help_text="e.g. browse-follow-up.",
    )
    version = models.ForeignKey(
        JourneyVersion,
        on_delete=models.RESTRICT,
        related_name="enrollments",
        help_text="The version the contact entered and stays on, e.g. v1.",
    )
    contact = models.ForeignKey(
        "crm.Contact",
        on_delete=models.CASCADE,
        related_name="journey_enrollments",
        help_text="e.g. ada@example.com.",
    )
    entry_key = models.CharField(
        "entry key",
        max_length=200,
        blank=True,
        default="",
        help_text="The entry event's key value for once_per_key journeys, else empty, e.g. 8812.",
    )
    status = models.CharField(
        max_length=10,
        choices=Status.choices,
        default=Status.ACTIVE,
        help_text="e.g. active.",
    )
    step_id = models.CharField(
        "current step",
        max_length=100,
        blank=True,
        help_text="The id of the step the contact is at, e.g. cool-off.",
    )
    sequence = models.PositiveIntegerField(default=0, help_text="Steps run so far, e.g. 3.")
    due_at = models.DateTimeField(
        "due",
        null=True,
        blank=True,
        help_text="When a waiting contact moves on; empty when not waiting, e.g. 2026-03-01 13:00.",
    )
    entered_at = models.DateTimeField(
        "entered", default=dj_timezone.now, help_text="e.g. 2026-03-01 09:00."
    )
    finished_at = models.DateTimeField(
        "finished", null=True, blank=True, help_text="e.g. 2026-03-02 09:00."
    )
    exit_reason = models.CharField(
        "exit reason",
        max_length=200,
        blank=True,
        help_text="Why the contact left, e.g. goal order_completed.",
    )
    step_started_at = models.DateTimeField(
        "at step since",
        null=True,
        blank=True,
        help_text="When the contact reached its current step (a wait_for counts events from "
        "here), e.g. 2026-03-01 13:00.",
    )
    awaiting_event = models.CharField(
        "awaiting event",
        max_length=100,
        blank=True,
        default="",
        help_text="The event a wait_for step waits for; empty otherwise, e.g. cart_updated.",
    )
    conversion_event = models.ForeignKey(
        "crm.Event",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name="goal event",
        help_text="The event that reached the goal, e.g. order_completed #881.",
    )
    conversion_value = models.DecimalField(
        "conversion value",
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="The goal event's value, e.g. 42.50.",
    )
    entry_properties = models.JSONField(
        "entry properties",
        default=dict,
        blank=True,
        help_text='The entry event\'s properties, for keyed waits, e.g. {"cart_id": "8812"}.',
    )

    class Meta:
        verbose_name = "enrollment"
        constraints = [
            models.UniqueConstraint(
                fields=["journey", "contact", "entry_key"],
                condition=Q(status="active"),
                name="journeys_enrollment_active_unique",
            ),
        ]
        indexes = [
            # The beat task's claim: only waiting rows are in it, so it stays small.
            models.Index(
                fields=["due_at"],
                condition=Q(status="active", due_at__isnull=False),
                name="journeys_enrol_due_idx",
            ),
            models.Index(fields=["contact", "journey"], name="journeys_enrol_contact_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.journey_id} at {self.step_id or '-'}"


class StepRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    enrollment = models.ForeignKey(
        Enrollment,
        on_delete=models.CASCADE,
        related_name="step_runs",
        help_text="e.g. contact 42 in browse-follow-up.",
    )
    step_id = models.CharField("step", max_length=100, help_text="e.g. email-1.")
    sequence = models.PositiveIntegerField(
        help_text="The enrollment's step count when this ran, e.g. 2."
    )
    status = models.CharField(
        max_length=10, choices=Status.choices, default=Status.RUNNING, help_text="e.g. done."
    )
    outcome = models.JSONField(
        default=dict,
        blank=True,
        help_text='What the step did, e.g. {"branch": "then"} or {"delivery_id": 7}.',
    )
    started_at = models.DateTimeField(
        "started", default=dj_timezone.now, help_text="e.g. 2026-03-01 13:00."
    )
    finished_at = models.DateTimeField(
        "finished", null=True, blank=True, help_text="e.g. 2026-03-01 13:00."
    )

    class Meta:
        verbose_name = "step run"
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "step_id", "sequence"], name="journeys_steprun_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.step_id} #{self.sequence}"
