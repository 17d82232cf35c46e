"""Consent changes people make themselves: the unsubscribe page and its RFC 8058 one-click
twin, the preference centre, SMS keywords, and what providers report (bounces, complaints,
an opt-out such as the STOP a person texts to the carrier).

Every change is an entry in the consent ledger (crm.services.consent.consent_record). The
dispatcher re-reads the ledger when it claims a delivery, so a change written here is in
force before the next send. Entries are only written where the current status changes, so
repeating an action (a second one-click POST, a replayed webhook) adds nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.channels.base import OptOut
from campaigns.models import Delivery, Response
from crm.models import MARKETING, ConsentRecord, Contact, Suppression
from crm.normalise import address_hash
from crm.selectors import consent_current
from crm.services.consent import consent_record

Scope = Literal["topic", "all"]
PAUSE_WEEKS = (1, 2, 4, 8)
# Responses we record ourselves (not a provider's) are deduplicated under this name.
OWN_PROVIDER = "cadence"
_USER_AGENT_MAX = 1000


@dataclass(frozen=True)
class ConsentEvidence:
    """What the ledger keeps about one action: where it came from and the words shown."""

    source: str
    text: str = ""
    text_version: str = ""
    ip_address: str | None = None
    user_agent: str = ""
    proof: dict[str, Any] = field(default_factory=dict)


def _statuses(*, contact: Contact, channel: str) -> dict[str, str]:
    """{purpose: current status} on one channel."""
    current = consent_current([contact.pk])[contact.pk]
    return {purpose: status for (ch, purpose), status in current.items() if ch == channel}


def _write(
    *,
    contact: Contact,
    channel: str,
    purposes: Iterable[str],
    status: str,
    evidence: ConsentEvidence,
    texts: dict[str, str] | None = None,
    only_changes: bool = False,
) -> list[ConsentRecord]:
    """Append one entry per purpose whose current status differs. With only_changes, no
    entry is ever granted means withdrawn, so unticking a box never ticked writes nothing."""
    current = _statuses(contact=contact, channel=channel)
    now = timezone.now()
    written = []
    for purpose in dict.fromkeys(purposes):
        if current.get(purpose, ConsentRecord.Status.WITHDRAWN if only_changes else None) == status:
            continue
        written.append(
            consent_record(
                contact=contact,
                channel=channel,
                purpose=purpose,
                status=status,
                source=evidence.source,
                text=(texts or {}).get(purpose, evidence.text),
                text_version=evidence.text_version,
                ip_address=evidence.ip_address,
                user_agent=(evidence.user_agent or "")[:_USER_AGENT_MAX],
                proof=evidence.proof,
                occurred_at=now,
            )
        )
    return written


def consent_topics() -> list[str]:
    """The purposes a person can choose in the preference centre, marketing first."""
    topics = [str(topic) for topic in settings.CONSENT_TOPICS]
    return list(dict.fromkeys([MARKETING, *topics]))


@transaction.atomic
def contact_consent_withdraw(
    *,
    contact: Contact,
    channel: str,
    evidence: ConsentEvidence,
    purposes: Iterable[str] = (MARKETING,),
    all_granted: bool = False,
) -> list[ConsentRecord]:
    """Withdraw consent on a channel for `purposes` (recorded even where nothing was granted,
    so the request is on file) and, with all_granted, for every purpose granted now and
    every topic the preference centre offers: "stop everything" is then on file for each of
    them, so that a later grant of a topic from the business (an import, the API) is refused
    as the person's own withdrawal (consent precedence, docs/consent.md)."""
    wanted = list(purposes)
    if all_granted:
        wanted += [
            purpose
            for purpose, status in _statuses(contact=contact, channel=channel).items()
            if status == ConsentRecord.Status.GRANTED
        ]
        wanted += consent_topics()
    return _write(
        contact=contact,
        channel=channel,
        purposes=wanted,
        status=ConsentRecord.Status.WITHDRAWN,
        evidence=evidence,
    )


def provider_opt_out_record(
    *,
    channel: str,
    contact: Contact | None,
    address: str,
    opt_out: OptOut,
    proof: dict[str, Any],
) -> None:
    """A provider says the person stopped our messages (on SMS, the STOP they texted to the
    carrier), whether it says so when we send or later in a status callback. The one place
    this is handled: a suppression of the address with the backend's reason, and the
    person's "stop everything" on the channel, a withdrawal of every purpose."""
    if address:
        Suppression.objects.get_or_create(
            channel=channel,
            address_hash=address_hash(channel, address),
            defaults={"reason": opt_out.suppression_reason, "note": opt_out.note},
        )
    if contact is None:
        return
    contact_consent_withdraw(
        contact=contact,
        channel=channel,
        all_granted=True,
        evidence=ConsentEvidence(source=opt_out.source, text=opt_out.text, proof=proof),
    )


@transaction.atomic
def contact_consent_grant(
    *, contact: Contact, channel: str, purposes: Iterable[str], evidence: ConsentEvidence
) -> list[ConsentRecord]:
    return _write(
        contact=contact,
        channel=channel,
        purposes=purposes,
        status=ConsentRecord.Status.GRANTED,
        evidence=evidence,
    )


def unsubscribed_response_record(
    *, contact: Contact, delivery_id: int | None, payload: dict[str, Any] | None = None
) -> Response | None:
    """One `unsubscribed` Response per delivery, however often its links are used. The
    delivery must be the contact's own: a token names both, and they must agree."""
    if delivery_id is None:
        return None
    delivery = (
        Delivery.objects.filter(pk=delivery_id, contact_id=contact.pk)
        .only("pk", "campaign_id", "contact_id")
        .first()
    )
    if delivery is None:
        return None
    try:
        with transaction.atomic():
            return Response.objects.create(
                delivery=delivery,
                contact_id=contact.pk,
                campaign_id=delivery.campaign_id,
                kind=Response.Kind.UNSUBSCRIBED,
                provider=OWN_PROVIDER,
                provider_event_id=f"unsubscribe:{delivery.pk}",
                payload=payload or {},
            )
    except IntegrityError:
        return None


@transaction.atomic
def unsubscribe_apply(
    *,
    contact: Contact,
    channel: str,
    purpose: str,
    scope: Scope,
    evidence: ConsentEvidence,
    delivery_id: int | None = None,
) -> list[ConsentRecord]:
    """A person asked to stop: one topic, or all marketing on the channel."""
    records = contact_consent_withdraw(
        contact=contact,
        channel=channel,
        evidence=evidence,
        purposes=[purpose],
        all_granted=scope == "all",
    )
    unsubscribed_response_record(
        contact=contact,
        delivery_id=delivery_id,
        payload={"scope": scope, "source": evidence.source, "purpose": purpose},
    )
    return records


@transaction.atomic
def preferences_save(
    *,
    contact: Contact,
    wanted: dict[tuple[str, str], bool],
    texts: dict[tuple[str, str], str],
    pause_weeks: int | None,
    evidence: ConsentEvidence,
) -> list[ConsentRecord]:
    """Apply the preference centre's form: {(channel, purpose): wants it}. Only changes are
    written, each with the words of its own checkbox. pause_weeks 0 ends a pause, None
    leaves it alone."""
    records: list[ConsentRecord] = []
    channels = sorted({channel for channel, _ in wanted})
    for channel in channels:
        for status, want in (
            (ConsentRecord.Status.GRANTED, True),
            (ConsentRecord.Status.WITHDRAWN, False),
        ):
            purposes = [p for (ch, p), value in wanted.items() if ch == channel and value is want]
            records += _write(
                contact=contact,
                channel=channel,
                purposes=purposes,
                status=status,
                evidence=evidence,
                texts={p: texts.get((channel, p), "") for p in purposes},
                only_changes=True,
            )
    if pause_weeks is not None:
        if pause_weeks and pause_weeks not in PAUSE_WEEKS:
            raise ValueError(f"pause_weeks {pause_weeks!r} is not one of {PAUSE_WEEKS}")
        until = timezone.now() + dt.timedelta(weeks=pause_weeks) if pause_weeks else None
        Contact.objects.filter(pk=contact.pk).update(marketing_paused_until=until)
        contact.marketing_paused_until = until
    return records


def address_suppress(*, channel: str, address: str, reason: str, note: str = "") -> bool:
    """Put an address on the suppression list; returns False when it was there already."""
    _, created = Suppression.objects.get_or_create(
        channel=channel,
        address_hash=address_hash(channel, address),
        defaults={"reason": reason, "note": note[:255]},
    )
    return created
