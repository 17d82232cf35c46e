"""The customer database: contacts, the consent ledger, suppression, events, and the records
that keep data quality honest (aliases, merge candidates and audits, import runs, API keys)."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar, TypedDict

from django.conf import settings
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


class ConsentQuerySet(models.QuerySet["ConsentRecord"]):
    def update(self, **kwargs: Any) -> int:
        raise PermissionError("The consent ledger is append-only; use crm.services.privacy.")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise PermissionError("The consent ledger is append-only.")

    def reassign_contact(self, *, to_contact_id: int) -> int:
        """Move these entries to another contact, for crm.services.merge only: when two
        contacts turn out to be one person, the ledger of the duplicate becomes the
        survivor's. Every word, date and proof stays as recorded; only whose entry it is
        changes. update() keeps refusing every other change."""
        return super().update(contact_id=to_contact_id)


class ConsentRecord(models.Model):
    """One entry of the append-only consent ledger. Current consent is the latest entry per
    (contact, channel, purpose), except that a grant from a source the business controls
    never outranks the person's own withdrawal (crm.selectors). Entries are never edited or
    deleted, only anonymised on erasure."""

    class Status(models.TextChoices):
        GRANTED = "granted", "Granted"
        WITHDRAWN = "withdrawn", "Withdrawn"

    class Source(models.TextChoices):
        FORM = "form", "Form"
        DOUBLE_OPT_IN = "double_opt_in", "Double opt-in"
        IMPORT = "import", "Import"
        API = "api", "API"
        ADMIN = "admin", "Admin"
        UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
        ONE_CLICK = "one_click", "One-click unsubscribe"
        PREFERENCE_CENTER = "preference_center", "Preference centre"
        SMS_KEYWORD = "sms_keyword", "SMS keyword"
        PROVIDER_BOUNCE = "provider_bounce", "Provider bounce"
        PROVIDER_COMPLAINT = "provider_complaint", "Provider complaint"
        # The ESP's own unsubscribe (its footer link or list-unsubscribe handling), reported
        # by its webhook: the person's action, seen through the provider.
        PROVIDER_UNSUBSCRIBE = "provider_unsubscribe", "Unsubscribe at the email provider"

    # Consent precedence (GDPR Art. 7(3), CAN-SPAM, TCPA): a withdrawal the person made
    # can only be reversed by the person. The two sets below are the whole rule's vocabulary;
    # crm.selectors and crm.services.consent apply it, docs/consent.md explains it.
    #
    # PERSON_SOURCES record something the person did themselves, proven by a signed link, a
    # confirmed email or their own phone: unsubscribe link, one-click, preference centre,
    # SMS STOP/START (and the carrier's STOP), double opt-in confirmation, and
    # the person's unsubscribe or spam complaint seen through the email provider. Only these
    # can reverse a withdrawal made by one of them.
    #
    # BUSINESS_SOURCES record what the business says about the person: a CSV import, the
    # API, staff in admin, and a form without confirmation (anyone can type anyone's address
    # into a form, which is why double opt-in exists). A grant from one of these never
    # outranks the person's own withdrawal, whatever its timestamp: it is refused when
    # written, and ignored where current consent is derived.
    #
    # provider_bounce is neither: a fact about the address, not a choice. It withdraws
    # consent and suppresses the address; the suppression list is what keeps it out.
    PERSON_SOURCES: ClassVar[frozenset[str]] = frozenset(
        {
            Source.DOUBLE_OPT_IN.value,
            Source.UNSUBSCRIBE_LINK.value,
            Source.ONE_CLICK.value,
            Source.PREFERENCE_CENTER.value,
            Source.SMS_KEYWORD.value,
            Source.PROVIDER_COMPLAINT.value,
            Source.PROVIDER_UNSUBSCRIBE.value,
        }
    )
    BUSINESS_SOURCES: ClassVar[frozenset[str]] = frozenset(
        {Source.FORM.value, Source.IMPORT.value, Source.API.value, Source.ADMIN.value}
    )

    class LegalBasis(models.TextChoices):
        CONSENT = "consent", "Consent"
        CONTRACT = "contract", "Contract"
        LEGITIMATE_INTEREST = "legitimate_interest", "Legitimate interest"
        LEGAL_OBLIGATION = "legal_obligation", "Legal obligation"

    contact = models.ForeignKey(Contact, on_delete=models.PROTECT, related_name="consents")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    purpose = models.CharField(
        max_length=64,
        default=MARKETING,
        help_text="marketing, or a topic the business defines, e.g. newsletter or offers.",
    )
    status = models.CharField(max_length=10, choices=Status.choices)
    source = models.CharField(max_length=32, choices=Source.choices)
    legal_basis = models.CharField(
        "legal basis", max_length=32, choices=LegalBasis.choices, default=LegalBasis.CONSENT
    )
    text = models.TextField(
        "consent text", blank=True, help_text="The words the person agreed to, as shown."
    )
    text_version = models.CharField(
        "text version", max_length=64, blank=True, help_text="e.g. signup-2026-01."
    )
    language = models.CharField(
        max_length=16,
        blank=True,
        help_text="The language the consent text was shown in, e.g. en or zh-hans.",
    )
    ip_address = models.GenericIPAddressField("IP address", null=True, blank=True)
    user_agent = models.TextField("user agent", blank=True)
    proof = models.JSONField(
        default=dict,
        blank=True,
        help_text='Evidence, e.g. {"file": "contacts.csv", "row": 12} or {"optin_id": 7}.',
    )
    occurred_at = models.DateTimeField("when", default=dj_timezone.now)
    recorded_at = models.DateTimeField(auto_now_add=True)

    objects = ConsentQuerySet.as_manager()

    class Meta:
        ordering = ("-occurred_at", "-id")
        indexes: ClassVar[list[Any]] = [
            models.Index(
                fields=["contact", "channel", "purpose", "-occurred_at", "-id"],
                name="crm_consent_current_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel}/{self.purpose} {self.status} via {self.source}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not getattr(self, "_anonymising", False):
            raise PermissionError("The consent ledger is append-only: add a new entry instead.")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise PermissionError("The consent ledger is append-only.")


class Suppression(models.Model):
    """An address that must never receive marketing, kept as a hash so that it survives the
    erasure of the person it belonged to."""

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        COMPLAINT = "complaint", "Spam complaint"
        INVALID = "invalid", "Invalid address (provider)"
        ERASED = "erased", "Erased on request"
        MANUAL = "manual", "Added by staff"
        # The carrier's STOP: the person texted STOP and the carrier blocks this number.
        # Lifted only when the person texts START (the carrier lifts its block then too).
        CARRIER_STOP = "carrier_stop", "Texted STOP (carrier block)"

    channel = models.CharField(max_length=10, choices=Channel.choices)
    address_hash = models.CharField(
        max_length=64, help_text="SHA-256 of 'channel:normalised address'."
    )
    reason = models.CharField(max_length=20, choices=Reason.choices)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        constraints: ClassVar[list[Any]] = [
            models.UniqueConstraint(
                fields=["channel", "address_hash"], name="crm_suppression_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.channel} {self.address_hash[:12]}… ({self.reason})"


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


class DoubleOptIn(models.Model):
    """A subscribe request waiting for its confirmation link; consent is granted only when
    the link is used, with both requests kept as proof."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        CONFIRMED = "confirmed", "Confirmed"
        EXPIRED = "expired", "Expired"

    contact = models.ForeignKey(Contact, on_delete=models.CASCADE, related_name="optins")
    channel = models.CharField(max_length=10, choices=Channel.choices, default=Channel.EMAIL)
    purpose = models.CharField(max_length=64, default=MARKETING)
    text = models.TextField(blank=True)
    text_version = models.CharField(max_length=64, blank=True)
    language = models.CharField(
        max_length=16,
        blank=True,
        help_text="The language the form was shown in; the confirmation email and the consent "
        "text recorded use it, e.g. en or zh-hans.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField(default=dj_timezone.now)
    request_ip = models.GenericIPAddressField(null=True, blank=True)
    request_user_agent = models.TextField(blank=True)
    expires_at = models.DateTimeField()
    confirmed_at = models.DateTimeField(null=True, blank=True)
    # The record of what was sent to an address, whichever contact held it: the limits on
    # confirmation emails per address are counted from these (crm/services/optin.py).
    address_hash = models.CharField(
        "address hash",
        max_length=64,
        blank=True,
        help_text="SHA-256 of the channel and normalised address, as in the suppression list, "
        "e.g. 9f86d081884c7d65…; blank on requests made before it was kept.",
    )
    sent_at = models.JSONField(
        "confirmations sent",
        default=list,
        blank=True,
        help_text="When a confirmation link was sent (or claimed for sending), oldest first, "
        'e.g. ["2026-12-03T14:00:00+00:00", "2026-12-03T14:20:00+00:00"].',
    )
    last_sent_at = models.DateTimeField("last sent", null=True, blank=True)

    class Meta:
        verbose_name = "double opt-in request"
        indexes: ClassVar[list[Any]] = [
            models.Index(fields=["status", "expires_at"], name="crm_optin_expiry_idx"),
            models.Index(
                fields=["address_hash", "channel", "last_sent_at"], name="crm_optin_address_idx"
            ),
        ]
        constraints: ClassVar[list[Any]] = [
            # One pending request per address and channel: a repeat re-sends it instead.
            models.UniqueConstraint(
                fields=["address_hash", "channel"],
                condition=models.Q(status="pending") & ~models.Q(address_hash=""),
                name="crm_optin_one_pending_per_address",
            ),
        ]

    def __str__(self) -> str:
        return f"opt-in {self.channel}/{self.purpose} ({self.status})"


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


class ImportRun(models.Model):
    """One CSV import, from the command line or an admin upload, with its progress and the
    path of its per-row report."""

    class Kind(models.TextChoices):
        CONTACTS = "contacts", "Contacts"
        EVENTS = "events", "Events"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    kind = models.CharField(max_length=10, choices=Kind.choices)
    filename = models.CharField(max_length=255)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    rows_read = models.PositiveIntegerField(default=0)
    rows_created = models.PositiveIntegerField(default=0)
    rows_updated = models.PositiveIntegerField(default=0)
    rows_unchanged = models.PositiveIntegerField(default=0)
    rows_rejected = models.PositiveIntegerField(default=0)
    consents_refused = models.PositiveIntegerField(
        "consent grants refused",
        default=0,
        help_text="Consent grants in the file that were not recorded because the person had "
        "withdrawn consent themselves or the address is suppressed, e.g. 3; the report names "
        "each row.",
    )
    report_path = models.CharField(max_length=500, blank=True)
    error = models.TextField(blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )

    def __str__(self) -> str:
        return f"{self.kind} import of {self.filename} ({self.status})"


class ApiKey(models.Model):
    """A key for the ingestion API. Only a SHA-256 of the key is stored; the key itself is
    shown once, when it is created."""

    name = models.CharField(max_length=100, unique=True)
    prefix = models.CharField(max_length=12, db_index=True, editable=False)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=dj_timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"
