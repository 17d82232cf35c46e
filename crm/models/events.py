"""What contacts do: product views, orders and any custom event type."""

from __future__ import annotations

from typing import Any, ClassVar, TypedDict

from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from crm.models.contacts import Contact


class EventProperties(TypedDict, total=False):
    """Event properties are free-form; these keys are examples of what shops send."""

    product_id: str
    product_name: str
    category: str
    url: str


class Event(models.Model):
    PRODUCT_VIEWED = "product_viewed"
    ORDER_COMPLETED = "order_completed"
    PAGE_VIEWED = "page_viewed"

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="events")
    type = models.CharField(
        max_length=100, help_text="product_viewed, order_completed, page_viewed or any name."
    )
    properties = models.JSONField(
        default=dict,
        blank=True,
        help_text='e.g. {"product_id": "SKU-1", "product_name": "Blue mug", "category": "kitchen"}',
    )
    value = models.DecimalField(
        max_digits=14, decimal_places=2, null=True, blank=True, help_text="Order value, e.g. 42.50"
    )
    currency = models.CharField(max_length=3, blank=True, help_text="ISO 4217, e.g. EUR.")
    occurred_at = models.DateTimeField(help_text="When it happened; may be in the past (backfill).")
    received_at = models.DateTimeField(default=dj_timezone.now)
    source = models.CharField(max_length=50, default="api", help_text="e.g. api, import, shopify.")
    client_id = models.CharField(
        "client id",
        max_length=255,
        null=True,
        blank=True,
        help_text="The id the client gave; unique per source, so a replay is harmless.",
    )

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["source", "client_id"],
                condition=Q(client_id__isnull=False),
                name="crm_event_client_id_unique",
            ),
        ]
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["contact", "type", "occurred_at"], name="crm_event_window_idx"),
            models.Index(fields=["type", "occurred_at"], name="crm_event_type_time_idx"),
            models.Index(fields=["contact", "occurred_at"], name="crm_event_contact_time_idx"),
            # Counted behaviour per contact (segments): one type, contacts in order, covering.
            models.Index(
                fields=["type", "contact", "occurred_at"], name="crm_event_type_contact_idx"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} at {self.occurred_at:%Y-%m-%d %H:%M}"
