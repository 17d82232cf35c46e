"""Who a campaign goes to, answered in SQL: current members of its audience segment, or the
members of its static list, minus members of its exclusion segments, minus erased contacts.
Read in keyset chunks by id."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from django.db.models import Exists, OuterRef, QuerySet

from campaigns.models import Campaign
from core.keyset import keyset_pages
from crm.models import Contact
from segments.models import SegmentMembership, StaticListMember


def _excluded(campaign: Campaign) -> Exists | None:
    exclusion_ids = list(campaign.exclusion_segments.values_list("pk", flat=True))
    if not exclusion_ids:
        return None
    return Exists(
        SegmentMembership.objects.filter(
            contact_id=OuterRef("pk"), segment_id__in=exclusion_ids, exited_at__isnull=True
        )
    )


def _included(campaign: Campaign) -> Exists | None:
    if campaign.audience_id is not None:
        return Exists(
            SegmentMembership.objects.filter(
                contact_id=OuterRef("pk"), segment_id=campaign.audience_id, exited_at__isnull=True
            )
        )
    if campaign.audience_list_id is not None:
        return Exists(
            StaticListMember.objects.filter(
                contact_id=OuterRef("pk"), static_list_id=campaign.audience_list_id
            )
        )
    return None


def audience_queryset(*, campaign: Campaign) -> QuerySet[Contact]:
    included = _included(campaign)
    if included is None:
        return Contact.objects.none()
    members = Contact.objects.filter(included, is_erased=False)
    excluded = _excluded(campaign)
    return members.filter(~excluded) if excluded is not None else members


def audience_chunks(
    *, campaign: Campaign, chunk_size: int = 2000
) -> Iterator[list[tuple[int, str]]]:
    """[(contact id, time zone)] in id order, chunk by chunk (keyset pagination)."""
    rows = audience_queryset(campaign=campaign).values_list("pk", "timezone")
    yield from keyset_pages(rows, size=chunk_size)


def contacts_excluded(*, campaign: Campaign, contact_ids: Iterable[int]) -> set[int]:
    """The contacts among `contact_ids` in one of the campaign's exclusion segments."""
    excluded = _excluded(campaign)
    if excluded is None:
        return set()
    return set(
        Contact.objects.filter(pk__in=list(contact_ids))
        .filter(excluded)
        .values_list("pk", flat=True)
    )


def contact_excluded(*, campaign: Campaign, contact_id: int) -> bool:
    excluded = _excluded(campaign)
    if excluded is None:
        return False
    return Contact.objects.filter(pk=contact_id).filter(excluded).exists()
