"""Blocking in SQL: live contacts grouped by a cheap key, so only contacts sharing one are
ever paired."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Concat, Left, Lower, Replace, Right, StrIndex

from crm.models import Contact, ContactAlias
from crm.services.duplicates.keys import PHONE_TAIL


def _live() -> QuerySet[Contact]:
    return Contact.objects.filter(is_erased=False)


def block_querysets() -> dict[str, QuerySet[Contact]]:
    """Each block: live contacts annotated with `k`, the key that groups them. The keys
    follow phone_tail, local_part and external_id_key closely enough to pair the contacts
    those would; the scoring then looks at the real values."""
    compact: Func = Lower(F("external_id"))
    for char in ("-", "_", " ", ".", "/", "#"):
        compact = Replace(compact, Value(char), Value(""))
    email = (
        _live()
        .filter(email_key__contains="@")
        .annotate(_local=Left("email_key", StrIndex("email_key", Value("@")) - 1))
        .annotate(_plus=StrIndex("_local", Value("+")))
        .annotate(
            _untagged=Case(
                When(_plus__gt=0, then=Left("_local", F("_plus") - 1)),
                default=F("_local"),
                output_field=CharField(),
            )
        )
        .annotate(k=Replace("_untagged", Value("."), Value("")))
    )
    name = (
        _live()
        .exclude(last_name="")
        .annotate(
            k=Concat(
                Lower("last_name"),
                Value(" "),
                Lower(Left("first_name", 1)),
                output_field=CharField(),
            )
        )
    )
    return {
        "phone number": _live().filter(phone__isnull=False).annotate(k=Right("phone", PHONE_TAIL)),
        "email local part": email,
        "last name and first initial": name,
        "external id": _live().filter(external_id__isnull=False).annotate(k=compact),
    }


# The key may be NULL or empty (no phone digits, an email without a local part).
_NO_KEY = Q(k__isnull=True) | Q(k="")


def blocks(queryset: QuerySet[Any], *, max_block: int) -> Iterator[list[int]]:
    """Groups of 2..max_block contact ids sharing the key `k`, streamed in key order; the
    grouping and the size limit are one GROUP BY in the database."""
    keys = (
        queryset.exclude(_NO_KEY)
        .values("k")
        .annotate(n=Count("id"))
        .filter(n__gt=1, n__lte=max_block)
        .values("k")
    )
    rows = queryset.filter(Q(k__in=keys)).order_by("k", "id").values_list("k", "id")
    for _key, group in itertools.groupby(rows.iterator(chunk_size=2000), key=lambda row: row[0]):
        yield [contact_id for _, contact_id in group]


def oversized_blocks(queryset: QuerySet[Any], *, max_block: int) -> int:
    return int(
        queryset.exclude(_NO_KEY)
        .values("k")
        .annotate(n=Count("id"))
        .filter(n__gt=max_block)
        .count()
    )


def alias_pairs() -> Iterator[tuple[int, int]]:
    """A former address of one contact that is another contact's current one."""
    for kind, column in (
        (ContactAlias.Kind.PHONE, "phone"),
        (ContactAlias.Kind.EMAIL, "email_key"),
        (ContactAlias.Kind.EXTERNAL_ID, "external_id"),
    ):
        holder = _live().filter(**{column: OuterRef("value")}).values("pk")[:1]
        rows = (
            ContactAlias.objects.filter(kind=kind, contact__is_erased=False)
            .annotate(other=Subquery(holder))
            .filter(other__isnull=False)
            .exclude(other=F("contact_id"))
            .values_list("contact_id", "other")
        )
        yield from rows.iterator(chunk_size=2000)
