"""The consent ledger, the suppression list and double opt-in: what a person agreed to, in
whose words, and how they withdrew."""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.utils import timezone as dj_timezone

from crm.models.contacts import MARKETING, Channel, Contact


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
