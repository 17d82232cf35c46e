"""Writing the consent ledger. Entries are only ever appended.

Batches of consent from sources the business controls (import, API) go through
`consent_changes_decide`, which applies consent precedence: a grant is refused when the
person withdrew consent themselves (ConsentRecord.PERSON_SOURCES / BUSINESS_SOURCES), or when
the address is suppressed or was erased, and every entry asked for gets an outcome to report.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.utils import timezone

from crm.models import MARKETING, Channel, ConsentRecord, Contact
from crm.selectors import consent_current, consent_withdrawn_by_contact

_CHUNK = 500

# Why a grant was not recorded, as the API answers it and the import report starts its line.
WITHDRAWN_BY_CONTACT = "withdrawn_by_contact"
SUPPRESSED = "suppressed"
ERASED = "erased"
RefusalReason = Literal["withdrawn_by_contact", "suppressed", "erased"]

# What became of one entry asked for: appended to the ledger, already the current status
# (nothing appended, so a replay adds nothing), or refused with a reason.
Outcome = Literal["recorded", "unchanged", "refused"]

REFUSAL_EXPLANATIONS: dict[str, str] = {
    WITHDRAWN_BY_CONTACT: (
        "the person withdrew consent themselves, by an unsubscribe link, one-click, the "
        "preference centre or SMS STOP; only they can give it back: double opt-in, the "
        "preference centre or SMS START"
    ),
    SUPPRESSED: "the email or phone is on the suppression list",
    ERASED: "the address belonged to a person erased on request",
}


@dataclass(frozen=True)
class ConsentChange:
    """One consent entry a batch asks for. `blocked` is set by the caller, who knows the
    addresses: "suppressed" or "erased" when a grant must not reach this address."""

    contact_id: int
    channel: str
    purpose: str
    status: str
    blocked: str = ""


@dataclass(frozen=True)
class ConsentOutcome:
    channel: str
    purpose: str
    status: Outcome
    reason: str = ""  # a RefusalReason when refused

    def as_json(self) -> dict[str, str]:
        data = {"channel": self.channel, "purpose": self.purpose, "status": self.status}
        if self.reason:
            data["reason"] = self.reason
        return data


def consent_changes_decide(
    changes: Sequence[ConsentChange], *, source: str
) -> list[ConsentOutcome]:
    """Decide, for a batch of entries from one source, which are recorded, unchanged or
    refused, one outcome per change in order; the caller appends the recorded ones. Changes
    of the same contact apply one after another. Costs two queries per 500 contacts (current
    consent, and the person's own withdrawals for the grants of a business source), never one
    per contact.

    A grant is refused when the address belonged to an erased person, when the source is one
    the business controls and the person withdrew consent themselves
    (crm.selectors.consent_withdrawn_by_contact), or when the address is suppressed: the
    first of these that holds is the reason given. Withdrawals are always recorded."""
    contact_ids = sorted({change.contact_id for change in changes})
    current: dict[int, dict[tuple[str, str], str]] = {}
    for start in range(0, len(contact_ids), _CHUNK):
        current.update(consent_current(contact_ids[start : start + _CHUNK]))
    granted = ConsentRecord.Status.GRANTED
    refused: set[tuple[int, str, str]] = set()
    if source in ConsentRecord.BUSINESS_SOURCES:
        refused = consent_withdrawn_by_contact(
            (c.contact_id, c.channel, c.purpose or MARKETING)
            for c in changes
            if c.status == granted
        )
    outcomes: list[ConsentOutcome] = []
    for change in changes:
        purpose = change.purpose or MARKETING
        state = current.setdefault(change.contact_id, {})
        status: Outcome = "recorded"
        reason = ""
        if change.status != granted:
            # A withdrawal is always welcome; only a repeat of the current status is skipped.
            if state.get((change.channel, purpose)) == change.status:
                status = "unchanged"
        elif change.blocked == ERASED:
            status, reason = "refused", ERASED
        elif (change.contact_id, change.channel, purpose) in refused:
            status, reason = "refused", WITHDRAWN_BY_CONTACT
        elif change.blocked:
            status, reason = "refused", change.blocked
        elif state.get((change.channel, purpose)) == change.status:
            status = "unchanged"
        if status == "recorded":
            state[(change.channel, purpose)] = change.status
        outcomes.append(ConsentOutcome(change.channel, purpose, status, reason))
    return outcomes


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
