"""Who is this? Identifier lookups that also follow the aliases merges leave behind.

The ingestion API, the CSV import and contact_upsert resolve whole batches of identifiers at
once with `contacts_by_identifiers`, so that a request naming ada@old.example after Ada's
two records were merged still lands on the surviving contact.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from django.db.models import Q

from core.batching import chunks
from crm.models import Contact, ContactAlias

IdentifierKind = Literal["external_id", "email", "phone"]

# Comfortably below every backend's limit on bound parameters per query.
LOOKUP_CHUNK = 500

# The column of Contact that holds each identifier kind; "email" is the lowercased email_key,
# the same value ContactAlias keeps for kind "email".
_CONTACT_COLUMN: dict[str, str] = {
    ContactAlias.Kind.EXTERNAL_ID: "external_id",
    ContactAlias.Kind.EMAIL: "email_key",
    ContactAlias.Kind.PHONE: "phone",
}


def _distinct(values: Iterable[str | None]) -> list[str]:
    return sorted({value for value in values if value})


def contacts_by_identifiers(
    *,
    external_ids: Iterable[str | None] = (),
    email_keys: Iterable[str | None] = (),
    phones: Iterable[str | None] = (),
) -> dict[tuple[str, str], int]:
    """Resolve a batch of identifiers to contact ids: {(kind, value): contact_id}.

    kind is "external_id", "email" or "phone" (the values of ContactAlias.Kind). Pass values
    already normalised: email_keys lowercased (crm.normalise.email_key), phones in E.164
    (crm.normalise.normalise_phone); they are matched exactly and come back as given. Empty
    and None values are ignored; a value nobody holds is simply absent from the answer.

    A contact's own identifier wins over an alias; an alias (the address of a duplicate that
    was merged away) maps to the contact that absorbed it. Erased contacts are included,
    since their identifiers are cleared on erasure anyway and the caller decides.

    Cost: for each kind, one query per 500 distinct values against the contact's unique
    index, plus one query per 500 values left over against the alias index. A batch of a
    thousand events naming a few hundred contacts takes a handful of queries.
    """
    wanted: dict[str, list[str]] = {
        ContactAlias.Kind.EXTERNAL_ID: _distinct(external_ids),
        ContactAlias.Kind.EMAIL: _distinct(email_keys),
        ContactAlias.Kind.PHONE: _distinct(phones),
    }
    found: dict[tuple[str, str], int] = {}
    for kind, values in wanted.items():
        column = _CONTACT_COLUMN[kind]
        for chunk in chunks(values, LOOKUP_CHUNK):
            rows = Contact.objects.filter(**{f"{column}__in": chunk}).values_list(column, "pk")
            for value, contact_id in rows:
                found[(str(kind), value)] = contact_id

    missing = [
        (str(kind), value)
        for kind, values in wanted.items()
        for value in values
        if (str(kind), value) not in found
    ]
    for missing_chunk in chunks(missing, LOOKUP_CHUNK):
        by_kind: dict[str, list[str]] = {}
        for kind, value in missing_chunk:
            by_kind.setdefault(kind, []).append(value)
        condition = Q()
        for kind, values in by_kind.items():
            condition |= Q(kind=kind, value__in=values)
        for kind, value, contact_id in ContactAlias.objects.filter(condition).values_list(
            "kind", "value", "contact_id"
        ):
            found[(kind, value)] = contact_id
    return found


def contact_ids_for(
    identifiers: dict[tuple[str, str], int],
    *,
    external_id: str | None = None,
    email_key: str | None = None,
    phone: str | None = None,
) -> list[int]:
    """The distinct contacts one record's identifiers resolve to, in the order external id,
    email, phone, from an answer of contacts_by_identifiers. More than one id means the
    record names two contacts that are one person: a case for contact_merge."""
    ids: list[int] = []
    for kind, value in (
        (ContactAlias.Kind.EXTERNAL_ID, external_id),
        (ContactAlias.Kind.EMAIL, email_key),
        (ContactAlias.Kind.PHONE, phone),
    ):
        if not value:
            continue
        contact_id = identifiers.get((str(kind), value))
        if contact_id is not None and contact_id not in ids:
            ids.append(contact_id)
    return ids
