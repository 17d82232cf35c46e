"""Segments: definitions, membership with entered/exited history, daily size snapshots."""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from crm.models import Contact

__all__ = [
    "Segment",
    "SegmentMembership",
    "SegmentPendingContact",
    "SegmentSizeSnapshot",
]

DEFINITION_EXAMPLE = (
    '{"op": "and", "conditions": [{"type": "behaviour", "event": "product_viewed", '
    '"operator": "at_least", "count": 3, "days": 7}, {"op": "not", "conditions": '
    '[{"type": "behaviour", "event": "order_completed", "operator": "none", "days": 7}]}, '
    '{"type": "consent", "channel": "email", "purpose": "marketing", "state": "has"}]}'
)


def _default_min_size() -> int:
    return int(getattr(settings, "SEGMENT_MIN_SIZE", 100))


def _default_definition() -> dict[str, Any]:
    return {"op": "and", "conditions": []}


class Segment(models.Model):
    """A definition that is always current: its members are whoever matches it now, kept in
    SegmentMembership by refreshes."""

    name = models.CharField(max_length=200, help_text="e.g. Browsed but did not buy this week")
    slug = models.SlugField(
        max_length=100,
        unique=True,
        help_text="Stable name other segments and triggers use, e.g. browsed-no-purchase-7d.",
    )
    description = models.TextField(blank=True, help_text="What the segment is for.")
    definition = models.JSONField(
        default=_default_definition,
        help_text=f"A tree of and / or / not over conditions, e.g. {DEFINITION_EXAMPLE}",
    )
    min_size = models.PositiveIntegerField(
        "minimum size",
        default=_default_min_size,
        help_text="Below this many members the segment is flagged too small to act on, e.g. 100.",
    )
    is_active = models.BooleanField(
        "active", default=True, help_text="Inactive segments are not refreshed."
    )
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    last_refreshed_at = models.DateTimeField(
        "last refreshed", null=True, blank=True, editable=False
    )
    size = models.PositiveIntegerField(
        default=0, editable=False, help_text="Current members at the last refresh, e.g. 1520."
    )

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        # Imported here: the compiler imports the models it compiles against.
        from segments.compiler.tree import DefinitionError, definition_dump, definition_parse
        from segments.selectors import segment_reference_problems

        try:
            node = definition_parse(self.definition)
        except DefinitionError as exc:
            raise ValidationError({"definition": exc.messages}) from exc
        problems = segment_reference_problems(segment=self, node=node)
        if problems:
            raise ValidationError({"definition": problems})
        self.definition = definition_dump(node)


class SegmentMembership(models.Model):
    """One stay of a contact in a segment: entered_at to exited_at (NULL while current).
    Leaving closes the row; coming back opens a new one, so the history is kept."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="memberships")
    contact = models.ForeignKey(
        Contact, on_delete=models.CASCADE, related_name="segment_memberships"
    )
    entered_at = models.DateTimeField("entered", default=dj_timezone.now)
    exited_at = models.DateTimeField("exited", null=True, blank=True)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            # Also the index of current members by segment.
            models.UniqueConstraint(
                fields=["segment", "contact"],
                condition=Q(exited_at__isnull=True),
                name="segments_membership_one_current",
            ),
        ]
        indexes: ClassVar[list[Any]] = [
            models.Index(
                fields=["contact", "segment"],
                condition=Q(exited_at__isnull=True),
                name="segments_member_contact_idx",
            ),
            models.Index(fields=["segment", "-entered_at"], name="segments_member_hist_idx"),
        ]

    def __str__(self) -> str:
        end = f"{self.exited_at:%Y-%m-%d %H:%M}" if self.exited_at else "now"
        return (
            f"{self.contact_id} in {self.segment_id} from {self.entered_at:%Y-%m-%d %H:%M} to {end}"
        )


class SegmentSizeSnapshot(models.Model):
    """A segment's size on one day (the last refresh of that day wins), for the chart."""

    segment = models.ForeignKey(Segment, on_delete=models.CASCADE, related_name="snapshots")
    date = models.DateField(help_text="UTC date, e.g. 2026-03-01.")
    size = models.PositiveIntegerField(help_text="e.g. 1520.")

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["segment", "date"], name="segments_snapshot_daily"),
        ]

    def __str__(self) -> str:
        return f"{self.segment_id} on {self.date}: {self.size}"


class SegmentPendingContact(models.Model):
    """A contact touched by new events whose memberships are not yet refreshed: the queue
    that coalesces many ingests into one incremental refresh. Deliberately not a foreign key:
    a merge must not move these rows, and a vanished contact is just skipped."""

    contact_id = models.BigIntegerField(primary_key=True)
    queued_at = models.DateTimeField(default=dj_timezone.now)

    def __str__(self) -> str:
        return f"contact {self.contact_id} queued at {self.queued_at:%H:%M:%S}"
