"""Contacts, their channels and the addresses merged duplicates leave behind."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, TypedDict

from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"


MARKETING = "marketing"


class ContactAttributes(TypedDict, total=False):
    """Custom attributes are free-form; these keys are only examples."""

    plan: str
    loyalty_points: int
    favourite_category: str


class Contact(models.Model):
    uuid = models.UUIDField(
        "public id",
        default=uuid.uuid4,
        unique=True,
        editable=False,
        help_text="The id the API and exports use, e.g. 3f2b9c1e-...",
    )
    external_id = models.CharField(
        "external id",
        max_length=255,
        null=True,
        blank=True,
        help_text="The business's own customer id, unique when present, e.g. CUST-10042.",
    )
    email = models.CharField(
        max_length=254,
        null=True,
        blank=True,
        help_text="Normalised: trimmed, domain lowercased, e.g. Ada.Lovelace@example.com.",
    )
    email_key = models.CharField(
        max_length=254,
        null=True,
        blank=True,
        editable=False,
        help_text="The email lowercased, used for case-insensitive lookups and uniqueness.",
    )
    phone = models.CharField(
        max_length=20,
        null=True,
        blank=True,
        help_text="E.164, e.g. +14155550123.",
    )
    first_name = models.CharField("first name", max_length=150, blank=True)
    last_name = models.CharField("last name", max_length=150, blank=True)
    locale = models.CharField(max_length=35, blank=True, help_text="e.g. en-GB or zh-Hans.")
    timezone = models.CharField(
        "time zone",
        max_length=64,
        blank=True,
        help_text="IANA zone, e.g. Europe/Paris. Drives local send times and SMS quiet hours.",
    )
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166 code, e.g. DE.")
    attributes = models.JSONField(
        default=dict,
        blank=True,
        help_text='Custom attributes, e.g. {"plan": "pro", "loyalty_points": 120}.',
    )
    created_at = models.DateTimeField(default=dj_timezone.now, editable=False, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    last_activity_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="occurred_at of the latest event of any type; editing a contact is not activity.",
    )
    last_purchase_at = models.DateTimeField(
        null=True,
        blank=True,
        db_index=True,
        help_text="occurred_at of the latest order_completed event.",
    )
    marketing_paused_until = models.DateTimeField(
        "marketing paused until",
        null=True,
        blank=True,
        help_text="Set from the preference centre ('pause for N weeks'): no marketing before.",
    )
    is_erased = models.BooleanField("erased", default=False, db_index=True)
    erased_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=Q(external_id__isnull=False),
                name="crm_contact_external_id_unique",
            ),
            models.UniqueConstraint(
                fields=["email_key"],
                condition=Q(email_key__isnull=False),
                name="crm_contact_email_key_unique",
            ),
            models.UniqueConstraint(
                fields=["phone"],
                condition=Q(phone__isnull=False),
                name="crm_contact_phone_unique",
            ),
        ]
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["timezone"], name="crm_contact_tz_idx"),
            models.Index(fields=["country"], name="crm_contact_country_idx"),
        ]

    def __str__(self) -> str:
        if self.is_erased:
            return f"erased contact {self.uuid}"
        name = f"{self.first_name} {self.last_name}".strip()
        address = self.email or self.phone or self.external_id or str(self.uuid)
        return f"{name} <{address}>" if name else address

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.email_key = self.email.lower() if self.email else None
        # Empty strings would collide under the unique constraints; absent is NULL.
        self.email = self.email or None
        self.phone = self.phone or None
        self.external_id = self.external_id or None
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "email" in update_fields:
            kwargs["update_fields"] = {*update_fields, "email_key"}
        super().save(*args, **kwargs)


class ContactAlias(models.Model):
    """An address that once belonged to a merged duplicate; later events and lookups by it
    land on the survivor."""

    class Kind(models.TextChoices):
        EMAIL = "email", "Email (lowercased)"
        PHONE = "phone", "Phone (E.164)"
        EXTERNAL_ID = "external_id", "External id"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="aliases")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    value = models.CharField(max_length=255, help_text="e.g. ada@old-domain.example")
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        verbose_name_plural = "contact aliases"
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(fields=["kind", "value"], name="crm_alias_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.kind}: {self.value}"
