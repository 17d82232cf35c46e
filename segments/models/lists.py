"""Static lists: audiences kept by hand or by trigger actions rather than by a definition.
A campaign can target one as it targets a segment."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.utils import timezone as dj_timezone

from crm.models import Contact

__all__ = [
    "StaticList",
    "StaticListMember",
]


class StaticList(models.Model):
    """A hand-kept list of contacts that rules add to and remove from, e.g. "VIP callback"."""

    name = models.CharField(max_length=200, help_text="e.g. Call back: big spenders")
    slug = models.SlugField(max_length=100, unique=True, help_text="e.g. vip-callback")
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False)

    class Meta:
        verbose_name = "static list"

    def __str__(self) -> str:
        return self.name


class StaticListMember(models.Model):
    static_list = models.ForeignKey(StaticList, on_delete=models.CASCADE, related_name="members")
    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="static_lists")
    added_at = models.DateTimeField(default=dj_timezone.now)
    # A number rather than a foreign key: segments sit below triggers and cannot reference
    # them, and a member outlives the firing ledger row that added it.
    added_by_firing_id = models.BigIntegerField(
        "added by trigger firing",
        null=True,
        blank=True,
        help_text=(
            "The id of the trigger firing (triggers.TriggerFiring) whose add_to_list action "
            "added this contact, e.g. 345; empty when added by hand in admin."
        ),
    )

    class Meta:
        verbose_name = "static list member"
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["static_list", "contact"], name="segments_list_member_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.contact_id} in {self.static_list_id}"
