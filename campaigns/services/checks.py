"""The last-moment checks on claimed deliveries, a few queries per batch (never per contact).

For each delivery, the first check that holds it back decides, in this order:

1. erased contact → skipped, erased;
2. no address, or one that is not an email / E.164 number → skipped, invalid_address;
3. the current address's hash is on the suppression list → skipped, suppressed;
4. current consent for the campaign's channel and purpose (crm.selectors: the latest entry,
   except that a grant from a source the business controls never outranks the person's own
   withdrawal) is not "granted" → skipped, no_consent (a withdrawal after queueing is seen
   here);
5. Contact.marketing_paused_until in the future (non-transactional campaigns) → skipped,
   paused. Skipped rather than deferred: the person asked for a break, and deferring would
   pile every campaign of the pause onto the day it ends;
6. SMS outside 08:00 to 21:00 in the contact's zone (non-transactional; see scheduling.py for
   unknown zones) → deferred, quiet_hours, until the next allowed local 08:00;
7. over a frequency cap (non-transactional, priority below 10) → deferred, capped, until the
   contact's next local day when the campaign defers, else skipped, capped.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Exists

from campaigns.models import Campaign, Delivery
from campaigns.services import caps
from campaigns.services.scheduling import contact_zone, quiet_hours_zones, sms_next_allowed
from crm.models import Channel, ConsentRecord, Contact, Suppression
from crm.normalise import address_hash, normalise_email
from crm.selectors import consent_status_sql, consent_status_subquery

_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
Reason = Delivery.Reason


@dataclass
class Decision:
    delivery: Delivery
    action: Literal["send", "skip", "defer"]
    contact: Contact | None = None
    address: str = ""
    reason: str = ""
    until: dt.datetime | None = None
    error: str = ""


def _address(contact: Contact, channel: str) -> str | None:
    """The contact's current address on the channel, or None when missing or malformed."""
    if channel == Channel.EMAIL:
        try:
            return normalise_email(contact.email or "")
        except ValidationError:
            return None
    phone = (contact.phone or "").strip()
    return phone if _E164.match(phone) else None


def deliveries_check(
    *, campaign: Campaign, deliveries: list[Delivery], now: dt.datetime
) -> list[Decision]:
    """Decide, for claimed deliveries of one campaign, which go out now."""
    batch = _BatchCheck(campaign=campaign, deliveries=deliveries, now=now)
    return [batch.decide(delivery) for delivery in deliveries]


class _BatchCheck:
    """What the checks need for one batch, read in a few queries, then one decision per
    delivery in the order the module docstring gives."""

    def __init__(self, *, campaign: Campaign, deliveries: list[Delivery], now: dt.datetime):
        self.campaign = campaign
        self.channel = channel = campaign.channel
        self.now = now
        self.contacts = {
            contact.pk: contact
            for contact in Contact.objects.filter(
                pk__in=[d.contact_id for d in deliveries]
            ).annotate(
                current_consent=consent_status_subquery(channel=channel, purpose=campaign.purpose)
            )
        }
        self.addresses = {cid: _address(c, channel) for cid, c in self.contacts.items()}
        self.hashes = {
            cid: address_hash(channel, a) for cid, a in self.addresses.items() if a is not None
        }
        self.suppressed = set(
            Suppression.objects.filter(
                channel=channel, address_hash__in=set(self.hashes.values())
            ).values_list("address_hash", flat=True)
        )
        self.bypass = campaign.is_transactional
        self.cap_state = (
            None
            if self.bypass or campaign.priority >= 10
            else caps.cap_state_load(
                channel=channel,
                contact_ids=self.contacts.keys(),
                exclude_delivery_ids=[d.pk for d in deliveries],
                now=now,
            )
        )

    def decide(self, delivery: Delivery) -> Decision:
        contact = self.contacts.get(delivery.contact_id)
        if contact is None or contact.is_erased:
            return _skip(delivery, Reason.ERASED)
        address = self.addresses[contact.pk]
        if address is None:
            return _skip(delivery, Reason.INVALID_ADDRESS, f"no valid {self.channel} address")
        held = self.held_back(contact)
        if held is not None:
            return _skip(delivery, *held)
        until = self.quiet_until(contact, address)
        if until is not None:
            return Decision(
                delivery=delivery, action="defer", reason=Reason.QUIET_HOURS, until=until
            )
        capped = self.capped(delivery, contact, address)
        if capped is not None:
            return capped
        return Decision(delivery=delivery, action="send", contact=contact, address=address)

    def held_back(self, contact: Contact) -> tuple[str, str] | None:
        """(reason, detail) when suppression, consent or a pause holds the message back."""
        if self.hashes[contact.pk] in self.suppressed:
            return Reason.SUPPRESSED, ""
        consent = getattr(contact, "current_consent", None)
        if consent != ConsentRecord.Status.GRANTED:
            state = consent or "never given"
            return Reason.NO_CONSENT, f"{self.channel}/{self.campaign.purpose}: {state}"
        paused = contact.marketing_paused_until
        if not self.bypass and paused and paused > self.now:
            return Reason.PAUSED, f"paused until {paused:%Y-%m-%d}"
        return None

    def quiet_until(self, contact: Contact, address: str) -> dt.datetime | None:
        """The next allowed local time when an SMS falls in quiet hours, else None."""
        if self.channel != Channel.SMS or self.bypass:
            return None
        allowed = sms_next_allowed(self.now, self.zones(contact, address))
        return allowed if allowed > self.now else None

    def zones(self, contact: Contact, address: str) -> tuple[str, ...]:
        return quiet_hours_zones(
            timezone_name=contact.timezone, country=contact.country, phone=address
        )

    def capped(self, delivery: Delivery, contact: Contact, address: str) -> Decision | None:
        """Skipped or deferred by a frequency cap; else the send is counted against it."""
        if self.cap_state is None:
            return None
        zone = contact_zone(contact.timezone)
        blocked = caps.cap_blocked_until(
            self.cap_state, contact_id=contact.pk, zone=zone, now=self.now
        )
        if blocked is None:
            caps.cap_count(self.cap_state, contact_id=contact.pk, now=self.now)
            return None
        if not self.campaign.defer_when_capped:
            return _skip(delivery, Reason.CAPPED)
        if self.channel == Channel.SMS:
            blocked = sms_next_allowed(blocked, self.zones(contact, address))
        return Decision(delivery=delivery, action="defer", reason=Reason.CAPPED, until=blocked)


def _skip(delivery: Delivery, reason: str, error: str = "") -> Decision:
    return Decision(delivery=delivery, action="skip", reason=reason, error=error)


def delivery_still_allowed(
    *, contact_id: int, channel: str, purpose: str, address: str
) -> tuple[str, str] | None:
    """Checked once more right before the provider call, in one query: a withdrawal or a
    suppression that committed after the batch was claimed must stop this message. Returns
    (reason, detail) when it must not go out, else None."""
    row = (
        Contact.objects.filter(pk=contact_id)
        .annotate(
            _consent=consent_status_subquery(channel=channel, purpose=purpose),
            _suppressed=Exists(
                Suppression.objects.filter(
                    channel=channel, address_hash=address_hash(channel, address)
                )
            ),
        )
        .values_list("_consent", "_suppressed", "is_erased")
        .first()
    )
    if row is None:
        return (Reason.ERASED, "the contact is gone")
    consent, is_suppressed, is_erased = row
    if is_erased:
        return (Reason.ERASED, "erased after the batch was claimed")
    if is_suppressed:
        return (Reason.SUPPRESSED, "suppressed after the batch was claimed")
    if consent != ConsentRecord.Status.GRANTED:
        return (
            Reason.NO_CONSENT,
            f"{channel}/{purpose}: {consent or 'none'} (changed since claim)",
        )
    return None


def delivery_hand_over(
    *,
    delivery_id: int,
    contact_id: int,
    channel: str,
    purpose: str,
    address: str,
    moment: dt.datetime,
) -> tuple[str, str] | None:
    """Mark a claimed delivery as handed over to the provider, in one statement that also
    checks consent, suppression and erasure as they are now: a withdrawal or a suppression
    that committed after the batch was claimed stops the message, and nothing can commit
    between the check and the mark. Returns None when the caller may call the provider, else
    (reason, detail); reason "" means the row is no longer this worker's to send (released
    by a pause or taken back by the stale-claim sweep), so it is left as it is.

    Fixed SQL, because it runs once per message: building the equivalent ORM query cost more
    than running it."""
    quote = connection.ops.quote_name
    stamp = connection.ops.adapt_datetimefield_value(moment)
    consent_sql, consent_params = consent_status_sql(
        contact_column="c.id", channel=channel, purpose=purpose
    )
    sql = (
        f"UPDATE {quote(Delivery._meta.db_table)} SET handed_over_at = %s, "  # noqa: S608
        "attempts = attempts + 1, to_address = %s, updated_at = %s "
        "WHERE id = %s AND status = %s "
        f"AND EXISTS (SELECT 1 FROM {quote(Contact._meta.db_table)} c "
        f"WHERE c.id = %s AND NOT c.is_erased AND {consent_sql} = %s) "
        f"AND NOT EXISTS (SELECT 1 FROM {quote(Suppression._meta.db_table)} s "
        "WHERE s.channel = %s AND s.address_hash = %s)"
    )
    params = [
        stamp,
        address,
        stamp,
        delivery_id,
        Delivery.Status.SENDING,
        contact_id,
        *consent_params,
        ConsentRecord.Status.GRANTED,
        channel,
        address_hash(channel, address),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        if cursor.rowcount == 1:
            return None
    # Not handed over: say why (the rare path, so the readable query).
    stopped = delivery_still_allowed(
        contact_id=contact_id, channel=channel, purpose=purpose, address=address
    )
    return stopped or ("", "no longer claimed by this worker")
