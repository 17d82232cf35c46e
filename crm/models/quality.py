"""Data quality: duplicate candidates waiting for review, the audit of every merge, and the
data-quality report's view of contacts."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone as dj_timezone

from crm.models.contacts import Contact


class MergeCandidate(models.Model):
    """Two contacts that are likely the same person, waiting for review."""

    class Status(models.TextChoices):
        OPEN = "open", "Open"
        MERGED = "merged", "Merged"
        DISMISSED = "dismissed", "Not a duplicate"

    contact_a = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    contact_b = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="+")
    score = models.FloatField(help_text="0 to 100; higher is more likely the same person.")
    reasons = models.JSONField(
        default=list, blank=True, help_text='e.g. ["same phone", "name similarity 94"]'
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(default=dj_timezone.now)
    reviewed_at = models.DateTimeField(null=True, blank=True)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["contact_a", "contact_b"], name="crm_candidate_pair"),
        ]
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["status", "-score"], name="crm_candidate_review_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.contact_a_id} ~ {self.contact_b_id} ({self.score:.0f})"


class ContactMerge(models.Model):
    """The audit record of a merge: the duplicate's full profile is kept here, so nothing is
    lost when its row goes."""

    survivor = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="merges")
    duplicate_uuid = models.UUIDField()
    duplicate_snapshot = models.JSONField(
        help_text='The duplicate as it was, e.g. {"email": "...", "first_name": "..."}'
    )
    moved = models.JSONField(
        default=dict, help_text='Rows moved to the survivor, e.g. {"crm.Event": 12}'
    )
    score = models.FloatField(null=True, blank=True)
    merged_by = models.CharField(max_length=150, help_text="A username, or a command's name.")
    merged_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return f"{self.duplicate_uuid} → {self.survivor_id}"


class DataQuality(Contact):
    """Contacts seen through their data problems: the admin's data-quality report lists
    counts of unreachable, invalid and incomplete contacts, and the contacts behind each."""

    class Meta:
        proxy = True
        verbose_name = "data quality"
        verbose_name_plural = "data quality"
