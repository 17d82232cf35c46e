"""Writing the consent ledger. Entries are only ever appended."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from django.utils import timezone

from crm.models import MARKETING, Channel, ConsentRecord, Contact


def consent_record(
    *,
    contact: Contact,
    channel: str,
    status: str,
    source: str,
    purpose: str = MARKETING,
    text: str = "",
    text_version: str = "",
    language: str = "",
    legal_basis: str = ConsentRecord.LegalBasis.CONSENT,
    ip_address: str | None = None,
    user_agent: str = "",
    proof: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> ConsentRecord:
    """Append one entry; the contact's current consent for (channel, purpose) is now this."""
    record = build_consent_record(
        contact_id=contact.pk,
        channel=channel,
        status=status,
        source=source,
        purpose=purpose,
        text=text,
        text_version=text_version,
        language=language,
        legal_basis=legal_basis,
        ip_address=ip_address,
        user_agent=user_agent,
        proof=proof,
        occurred_at=occurred_at,
    )
    record.save()
    return record


def build_consent_record(
    *,
    contact_id: int,
    channel: str,
    status: str,
    source: str,
    purpose: str = MARKETING,
    text: str = "",
    text_version: str = "",
    language: str = "",
    legal_basis: str = ConsentRecord.LegalBasis.CONSENT,
    ip_address: str | None = None,
    user_agent: str = "",
    proof: dict[str, Any] | None = None,
    occurred_at: dt.datetime | None = None,
) -> ConsentRecord:
    """An unsaved entry, validated, for consent_record_bulk."""
    if channel not in Channel.values:
        raise ValueError(f"channel {channel!r} is not one of email, sms")
    if status not in ConsentRecord.Status.values:
        raise ValueError(f"status {status!r} is not one of granted, withdrawn")
    if source not in ConsentRecord.Source.values:
        raise ValueError(f"source {source!r} is not a known consent source")
    return ConsentRecord(
        contact_id=contact_id,
        channel=channel,
        purpose=purpose or MARKETING,
        status=status,
        source=source,
        legal_basis=legal_basis,
        text=text,
        text_version=text_version,
        language=language,
        ip_address=ip_address or None,
        user_agent=user_agent,
        proof=proof or {},
        occurred_at=occurred_at or timezone.now(),
    )


def consent_record_bulk(records: Iterable[ConsentRecord], *, batch_size: int = 1000) -> int:
    created = ConsentRecord.objects.bulk_create(list(records), batch_size=batch_size)
    return len(created)
