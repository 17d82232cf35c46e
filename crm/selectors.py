"""Reads over the customer database that other layers rely on."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import OuterRef, QuerySet, Subquery

from crm.models import MARKETING, ConsentRecord, Contact, Suppression
from crm.normalise import address_hash


def consent_latest_status_subquery(*, channel: str, purpose: str = MARKETING) -> Subquery:
    """The status of the latest ledger entry for the outer contact, channel and purpose
    (NULL when there is none): annotate or filter many contacts with it in one query."""
    latest = ConsentRecord.objects.filter(
        contact_id=OuterRef("pk"), channel=channel, purpose=purpose
    ).order_by("-occurred_at", "-id")
    return Subquery(latest.values("status")[:1])


def contacts_with_consent(
    *, channel: str, purpose: str = MARKETING, queryset: QuerySet[Contact] | None = None
) -> QuerySet[Contact]:
    """Contacts whose current consent for (channel, purpose) is granted, in one query."""
    base = queryset if queryset is not None else Contact.objects.all()
    return base.annotate(
        _consent=consent_latest_status_subquery(channel=channel, purpose=purpose)
    ).filter(_consent=ConsentRecord.Status.GRANTED, is_erased=False)


def consent_current(contact_ids: Iterable[int]) -> dict[int, dict[tuple[str, str], str]]:
    """{contact_id: {(channel, purpose): status}} from the latest entry of each, in one query."""
    ids = list(contact_ids)
    result: dict[int, dict[tuple[str, str], str]] = {cid: {} for cid in ids}
    rows = (
        ConsentRecord.objects.filter(contact_id__in=ids)
        .order_by("contact_id", "channel", "purpose", "-occurred_at", "-id")
        .values_list("contact_id", "channel", "purpose", "status")
    )
    for contact_id, channel, purpose, status in rows.iterator(chunk_size=2000):
        result[contact_id].setdefault((channel, purpose), status)
    return result


def suppressed(*, channel: str, address: str) -> bool:
    return Suppression.objects.filter(
        channel=channel, address_hash=address_hash(channel, address)
    ).exists()
