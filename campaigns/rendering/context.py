"""What a template sees: plain, read-only data built from whitelisted fields, never a model
instance, so nothing reaches settings, managers or secrets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

from django.conf import settings
from django.db.models import OuterRef, Subquery
from django.utils import timezone

from campaigns import tokens
from campaigns.models import Campaign
from core.batching import chunks
from core.zones import zone_or_utc
from crm.models import Contact, Event

_CHUNK = 500


def recent_context_for(contact_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per contact, the last product_viewed event's properties as ``last_viewed`` and the last
    order as ``last_order`` ({"value", "currency", "occurred_at", **properties}); contacts
    without such events get ``{}`` for them.

    Two queries per chunk of ids: one picks the latest event ids per contact and type with
    correlated subqueries (each an index seek on (contact, type, occurred_at)), one loads them.
    """
    ids = list(dict.fromkeys(contact_ids))
    result: dict[int, dict[str, Any]] = {cid: {"last_viewed": {}, "last_order": {}} for cid in ids}

    def latest(event_type: str) -> Subquery:
        return Subquery(
            Event.objects.filter(contact_id=OuterRef("pk"), type=event_type)
            .order_by("-occurred_at", "-id")
            .values("id")[:1]
        )

    for chunk in chunks(ids, _CHUNK):
        rows = (
            Contact.objects.filter(pk__in=chunk)
            .annotate(
                viewed_id=latest(Event.PRODUCT_VIEWED), order_id=latest(Event.ORDER_COMPLETED)
            )
            .values_list("pk", "viewed_id", "order_id")
        )
        wanted: dict[int, tuple[int, str]] = {}
        for contact_id, viewed_id, order_id in rows:
            if viewed_id:
                wanted[viewed_id] = (contact_id, "last_viewed")
            if order_id:
                wanted[order_id] = (contact_id, "last_order")
        if not wanted:
            continue
        events = Event.objects.filter(pk__in=list(wanted)).only(
            "id", "properties", "value", "currency", "occurred_at"
        )
        for event in events:
            contact_id, key = wanted[event.pk]
            properties = event.properties if isinstance(event.properties, dict) else {}
            data: dict[str, Any] = {**properties, "occurred_at": event.occurred_at}
            if key == "last_order":
                data["value"] = event.value
                data["currency"] = event.currency or properties.get("currency", "")
            result[contact_id][key] = data
    return result


def _frozen(value: Any) -> Any:
    """Read-only copies of JSON data: the template language calls any attribute that takes
    no argument, so a plain dict would obey {{ attributes.clear }} and a list {{ x.pop }}."""
    if isinstance(value, Mapping):
        return MappingProxyType({str(key): _frozen(item) for key, item in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(item) for item in value)
    return value


def contact_context(contact: Contact) -> dict[str, Any]:
    """The only contact fields a template sees."""
    return {
        "first_name": contact.first_name,
        "last_name": contact.last_name,
        "email": contact.email or "",
        "phone": contact.phone or "",
        "locale": contact.locale,
        "timezone": contact.timezone,
        "country": contact.country,
        "attributes": _frozen(contact.attributes if isinstance(contact.attributes, dict) else {}),
    }


# What previews and template validation put where a customer's links go: a marketer must
# never be handed a working unsubscribe or preference link (with it they could act as the
# customer), and an error shown in admin then has nothing to leak.
PREVIEW_UNSUBSCRIBE_URL = "#unsubscribe-link-preview"
PREVIEW_PREFERENCES_URL = "#preferences-link-preview"


def message_context(
    *,
    contact: Contact,
    campaign: Campaign,
    delivery_id: int | None,
    recent: dict[str, Any],
    preview: bool = False,
) -> dict[str, Any]:
    contact_id = contact.pk or 0
    if preview:
        links = {
            "unsubscribe_url": PREVIEW_UNSUBSCRIBE_URL,
            "preferences_url": PREVIEW_PREFERENCES_URL,
        }
    else:
        links = {
            "unsubscribe_url": tokens.unsubscribe_url(
                contact_id=contact_id,
                channel=campaign.channel,
                purpose=campaign.purpose,
                delivery_id=delivery_id,
            ),
            "preferences_url": tokens.preferences_url(contact_id=contact_id),
        }
    return {
        "contact": contact_context(contact),
        "campaign": {"name": campaign.name, "slug": campaign.slug},
        "last_viewed": _frozen(recent.get("last_viewed") or {}),
        "last_order": _frozen(recent.get("last_order") or {}),
        **links,
        "sender": settings.SENDER_POSTAL_ADDRESS,
        "now": timezone.now().astimezone(zone_or_utc(contact.timezone)),
    }
