"""What providers report after a send: email tracking events (normalised in
campaigns/channels/provider_events.py) and Twilio's inbound replies and status callbacks
(read in campaigns/channels/sms.py). Each becomes at most one Response (providers resend
events; the unique (provider, provider_event_id) decides), moves its Delivery forward only,
and changes consent or suppression where the person or their mailbox asked for it."""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from campaigns.channels.provider_events import EmailEvent
from campaigns.channels.sms import SMS_PROVIDER, sms_status_report
from campaigns.models import Campaign, Delivery, Response
from campaigns.services.consent_actions import (
    ConsentEvidence,
    address_suppress,
    contact_consent_grant,
    contact_consent_withdraw,
    provider_opt_out_record,
)
from crm.models import MARKETING, Channel, ConsentRecord, Contact, Suppression
from crm.normalise import address_hash, email_key, normalise_phone
from crm.selectors_identity import contacts_by_identifiers

logger = logging.getLogger(__name__)

S = Delivery.Status
# The one order of delivery statuses. A provider event moves a delivery only to a status of
# higher rank: a late "sent" never undoes "delivered", a replay never moves anything. Skipped
# deliveries were never handed over, so nothing a provider says moves them.
DELIVERY_STATUS_RANK: dict[str, int] = {
    S.QUEUED: 0,
    S.DEFERRED: 0,
    S.SENDING: 1,
    S.UNCERTAIN: 2,
    S.SENT: 3,
    S.DELIVERED: 4,
    S.FAILED: 4,
    S.SKIPPED: 9,
}

STOP_WORDS = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START_WORDS = frozenset({"START", "YES", "UNSTOP"})
HELP_WORDS = frozenset({"HELP", "INFO"})

_R = Response.Kind
_EMAIL_KINDS: dict[str, str] = {
    "delivered": _R.DELIVERED,
    "opened": _R.OPENED,
    "clicked": _R.CLICKED,
    "complained": _R.COMPLAINED,
    "unsubscribed": _R.UNSUBSCRIBED,
    "rejected": _R.FAILED,
    "failed": _R.FAILED,
    "deferred": _R.BOUNCED_SOFT,
}
# An open or a click proves the message arrived, even when the delivery event is lost.
_DELIVERED_KINDS = frozenset({_R.DELIVERED, _R.OPENED, _R.CLICKED})
_FAILED_KINDS = frozenset({_R.BOUNCED_HARD, _R.FAILED})


def delivery_status_advance(
    *, delivery_id: int, status: str, at: dt.datetime | None = None, error: str = ""
) -> bool:
    """Move a delivery to `status` if that is forward; one conditional UPDATE, so concurrent
    events cannot move it back. Returns whether it moved."""
    at = at or timezone.now()
    rank = DELIVERY_STATUS_RANK[status]
    earlier = [name for name, value in DELIVERY_STATUS_RANK.items() if value < rank]
    changes: dict[str, Any] = {"status": status, "updated_at": timezone.now()}
    if status == S.DELIVERED:
        changes["delivered_at"] = at
    if status in (S.SENT, S.DELIVERED):
        changes["sent_at"] = Coalesce("sent_at", Value(at))
    if error:
        changes["error"] = error[:2000]
    return bool(Delivery.objects.filter(pk=delivery_id, status__in=earlier).update(**changes))


def _response_once(**fields: Any) -> Response | None:
    """Create the Response unless the provider sent this event before (then None)."""
    try:
        with transaction.atomic():
            return Response.objects.create(**fields)
    except IntegrityError:
        return None


def _parse_time(value: str | None) -> dt.datetime:
    parsed = parse_datetime(value) if value else None
    return parsed if parsed is not None else timezone.now()


# --- Email --------------------------------------------------------------------------------


def _email_delivery(event: EmailEvent) -> Delivery | None:
    fields = ("pk", "contact_id", "campaign_id", "to_address", "status")
    if event["delivery_id"]:
        found = Delivery.objects.filter(pk=event["delivery_id"]).only(*fields).first()
        if found is not None:
            return found
    if event["message_id"]:
        return (
            Delivery.objects.filter(provider_message_id=event["message_id"]).only(*fields).first()
        )
    return None


def _esp_label(kind: str, delivery: Delivery | None) -> str:
    """An ESP's open or click of a campaign that tracks its own is kept but not counted: own
    tracking has it already, labelled, and the two would count the same person twice."""
    if kind not in (_R.OPENED, _R.CLICKED) or delivery is None:
        return Response.Label.HUMAN
    tracked = Campaign.objects.filter(pk=delivery.campaign_id, track_opens_clicks=True).exists()
    return Response.Label.NOT_COUNTED if tracked else Response.Label.HUMAN


def _contact_by_email(address: str) -> Contact | None:
    if not address:
        return None
    key = email_key(address.strip())
    found = contacts_by_identifiers(email_keys=[key]).get(("email", key))
    return Contact.objects.filter(pk=found).first() if found else None


def _email_kind(event: EmailEvent) -> str | None:
    if event["event_type"] == "bounced":
        return _R.BOUNCED_SOFT if event["soft"] else _R.BOUNCED_HARD
    return _EMAIL_KINDS.get(event["event_type"])


@transaction.atomic
def email_event_apply(*, event: EmailEvent) -> Response | None:
    """Record one tracking event. Returns the new Response, or None when the event was seen
    before or is of a kind we do not keep (queued, sent, autoresponded, ...)."""
    kind = _email_kind(event)
    if kind is None:
        logger.debug("Email event %s ignored (%s)", event["event_id"], event["event_type"])
        return None
    delivery = _email_delivery(event)
    if delivery is None:
        # Mail sent outside campaigns (opt-in confirmations) bounces too: still obeyed.
        logger.info(
            "Email event %s: no delivery for message %r / delivery id %r",
            event["event_id"],
            event["message_id"],
            event["delivery_id"],
        )
    recipient = event["recipient"] or (delivery.to_address if delivery else "")
    contact = (
        Contact.objects.filter(pk=delivery.contact_id).first()
        if delivery
        else _contact_by_email(recipient)
    )
    occurred_at = _parse_time(event["occurred_at"])
    label = _esp_label(kind, delivery)
    response = _response_once(
        delivery=delivery,
        contact=contact,
        campaign_id=delivery.campaign_id if delivery else None,
        kind=kind,
        url=event["click_url"][:2000] if kind == _R.CLICKED else "",
        provider=event["provider"],
        provider_event_id=event["event_id"],
        payload=event["raw"] if isinstance(event["raw"], dict) else {"raw": event["raw"]},
        occurred_at=occurred_at,
        label=label,
        label_reasons=["own_tracking_on"] if label == Response.Label.NOT_COUNTED else [],
    )
    if response is None:
        return None
    if delivery is not None and kind in _DELIVERED_KINDS:
        delivery_status_advance(delivery_id=delivery.pk, status=S.DELIVERED, at=occurred_at)
    elif delivery is not None and kind in _FAILED_KINDS:
        delivery_status_advance(
            delivery_id=delivery.pk, status=S.FAILED, at=occurred_at, error=event["description"]
        )
    _email_consequences(event=event, kind=kind, contact=contact, recipient=recipient)
    return response


def _email_consequences(
    *, event: EmailEvent, kind: str, contact: Contact | None, recipient: str
) -> None:
    proof = {"provider": event["provider"], "event_id": event["event_id"]}
    reason: str
    source: str
    if kind == _R.BOUNCED_HARD or (kind == _R.FAILED and _rejected_as_undeliverable(event)):
        reason, source = Suppression.Reason.HARD_BOUNCE, ConsentRecord.Source.PROVIDER_BOUNCE
    elif kind == _R.COMPLAINED:
        reason, source = Suppression.Reason.COMPLAINT, ConsentRecord.Source.PROVIDER_COMPLAINT
    elif kind == _R.UNSUBSCRIBED:
        # The person unsubscribed at the ESP (its footer link or its List-Unsubscribe
        # handling): their own withdrawal, but not through our signed link.
        reason, source = "", ConsentRecord.Source.PROVIDER_UNSUBSCRIBE
    else:
        return
    if reason and recipient:
        address_suppress(
            channel=Channel.EMAIL,
            address=recipient,
            reason=reason,
            note=f"{event['provider']} {event['event_type']}",
        )
    if contact is not None:
        contact_consent_withdraw(
            contact=contact,
            channel=Channel.EMAIL,
            all_granted=True,
            evidence=ConsentEvidence(source=source, text=event["description"], proof=proof),
        )


def _rejected_as_undeliverable(event: EmailEvent) -> bool:
    """The ESP refused to send because the address is known to bounce or is invalid."""
    raw = event["raw"] if isinstance(event["raw"], dict) else {}
    return event["event_type"] == "rejected" and raw.get("Type") in {
        "BadEmailAddress",
        "HardBounce",
    }


# --- SMS ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmsInbound:
    message_sid: str
    from_number: str
    body: str
    payload: dict[str, Any]


def _contact_by_phone(raw: str) -> Contact | None:
    try:
        phone = normalise_phone(raw)
    except ValidationError:
        return None
    found = contacts_by_identifiers(phones=[phone]).get(("phone", phone))
    return Contact.objects.filter(pk=found).first() if found else None


def _latest_sms_delivery(contact: Contact | None) -> Delivery | None:
    """The message a reply most likely answers: the last one we sent this contact by SMS."""
    if contact is None:
        return None
    return (
        Delivery.objects.filter(contact_id=contact.pk, channel=Channel.SMS, sent_at__isnull=False)
        .only("pk", "campaign_id")
        .order_by("-sent_at", "-pk")
        .first()
    )


def sms_keyword(body: str) -> str:
    """The keyword a reply is, if it is exactly one: 'stop', 'start', 'help' or ''."""
    word = body.strip().upper()
    if word in STOP_WORDS:
        return "stop"
    if word in START_WORDS:
        return "start"
    if word in HELP_WORDS:
        return "help"
    return ""


@transaction.atomic
def sms_inbound_apply(*, message: SmsInbound) -> str:
    """Obey one inbound SMS and say what it was: 'stop', 'start', 'help', 'reply' or
    'duplicate'. Every inbound message is kept as a Response (STOP as unsubscribed, the rest
    as replied) under its MessageSid, which is also what makes a retried or replayed request
    change nothing: Twilio's signature has no timestamp, so a captured START could otherwise
    undo a later STOP."""
    keyword = sms_keyword(message.body)
    contact = _contact_by_phone(message.from_number)
    delivery = _latest_sms_delivery(contact)
    response = _response_once(
        delivery=delivery,
        contact=contact,
        campaign_id=delivery.campaign_id if delivery else None,
        kind=_R.UNSUBSCRIBED if keyword == "stop" else _R.REPLIED,
        body=message.body[:1600],
        provider=SMS_PROVIDER,
        provider_event_id=f"{message.message_sid}:inbound",
        payload=message.payload,
    )
    if response is None:
        # Still answer HELP: the person asked again, Twilio only retried.
        return "help" if keyword == "help" else "duplicate"
    if keyword in ("", "help"):
        return keyword or "reply"
    if contact is None:
        logger.info("%s from a number no contact has (%s)", keyword, message.message_sid)
        return keyword
    evidence = ConsentEvidence(
        source=ConsentRecord.Source.SMS_KEYWORD,
        text=message.body.strip(),
        proof={"message_sid": message.message_sid, "from": message.from_number},
    )
    if keyword == "start":
        contact_consent_grant(
            contact=contact, channel=Channel.SMS, purposes=[MARKETING], evidence=evidence
        )
        # The carrier lifts its STOP block when the person texts START; so do we. Other
        # suppressions (invalid number, erasure) stay.
        Suppression.objects.filter(
            channel=Channel.SMS,
            address_hash=address_hash(Channel.SMS, message.from_number),
            reason=Suppression.Reason.CARRIER_STOP,
        ).delete()
    else:
        contact_consent_withdraw(
            contact=contact, channel=Channel.SMS, all_granted=True, evidence=evidence
        )
    return keyword


@transaction.atomic
def sms_status_apply(
    *, message_sid: str, status: str, error_code: str, to_number: str, payload: dict[str, Any]
) -> bool:
    """Apply one Twilio status callback; returns whether it was new."""
    report = sms_status_report(message_sid=message_sid, status=status, error_code=error_code)
    delivery = (
        Delivery.objects.filter(provider_message_id=message_sid, channel=Channel.SMS)
        .only("pk", "contact_id", "campaign_id")
        .first()
    )
    target = report.delivery_status
    if delivery is None:
        logger.info("Twilio status %r for unknown message %s", status, message_sid)
    kinds: dict[str, str] = {S.DELIVERED: _R.DELIVERED, S.FAILED: _R.FAILED}
    kind = kinds.get(target or "")
    if kind is not None:
        created = _response_once(
            delivery=delivery,
            contact_id=delivery.contact_id if delivery else None,
            campaign_id=delivery.campaign_id if delivery else None,
            kind=kind,
            provider=SMS_PROVIDER,
            provider_event_id=report.event_id,
            payload=payload,
        )
        if created is None:
            return False
    if delivery is not None and target is not None:
        delivery_status_advance(delivery_id=delivery.pk, status=target, error=report.error)
    if report.opt_out is not None:
        provider_opt_out_record(
            channel=Channel.SMS,
            contact=(
                Contact.objects.filter(pk=delivery.contact_id).first()
                if delivery
                else _contact_by_phone(to_number)
            ),
            address=to_number or "",
            opt_out=report.opt_out,
            proof=report.proof,
        )
    return True
