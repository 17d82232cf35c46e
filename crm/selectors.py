"""Reads over the customer database that other layers rely on.

Current consent for (contact, channel, purpose) is derived from the ledger in one way,
everywhere (send-time checks, segments, triggers, the preference centre, admin):

1. the person's own word: the latest entry for the purpose from `ConsentRecord.PERSON_SOURCES`;
2. when that word is "withdrawn", consent is withdrawn, whatever came after or before it from
   a source the business controls (import, API, admin, form): consent precedence, GDPR
   Art. 7(3). Refusing such grants when they are written (crm.services.consent) is the first
   line; this derivation keeps ledger rows written before that, or by any other path, from
   resuming sends;
3. otherwise the latest entry decides.

Purposes are independent, as the send-time checks treat them: a campaign of purpose
"newsletter" needs consent for "newsletter". Stopping one topic leaves the others alone (the
unsubscribe page offers "this topic" or "all marketing"); stopping all marketing withdraws
every purpose granted at the time, and each of those withdrawals is protected.

Three forms of the same rule, kept side by side so they stay equal: an ORM expression for
querysets (`consent_status_subquery`), fixed SQL for the once-per-message hand-over
(`consent_status_sql`) and Python over one query's rows (`consent_current`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import connection
from django.db.models import (
    Case,
    Exists,
    Expression,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.lookups import Exact

from core.batching import chunks
from crm.models import MARKETING, ConsentRecord, Contact, Suppression
from crm.normalise import address_hash

_CHUNK = 500
_WITHDRAWN = ConsentRecord.Status.WITHDRAWN.value

ConsentKey = tuple[int, str, str]  # (contact id, channel, purpose)


def _person_sources() -> list[str]:
    return sorted(ConsentRecord.PERSON_SOURCES)


def consent_status_subquery(
    *, channel: str, purpose: str = MARKETING, contact_ref: str = "pk"
) -> Expression:
    """The current consent status ("granted", "withdrawn" or NULL when never recorded) of the
    outer contact for (channel, purpose), by the rule in this module's docstring: annotate or
    filter many contacts with it in one query, two index seeks per contact."""

    def entries(of_purpose: str) -> QuerySet[ConsentRecord]:
        return ConsentRecord.objects.filter(
            contact_id=OuterRef(contact_ref), channel=channel, purpose=of_purpose
        ).order_by("-occurred_at", "-id")

    latest = Subquery(entries(purpose).values("status")[:1])
    person_word = Subquery(
        entries(purpose).filter(source__in=_person_sources()).values("status")[:1]
    )
    # A withdrawal in the person's own word decides whatever the latest entry is (were the
    # latest entry the person's, it would be that word): the latest entry is read once.
    return Case(
        When(Q(Exact(person_word, _WITHDRAWN)), then=Value(_WITHDRAWN)),
        default=latest,
    )


def consent_status_sql(*, contact_column: str, channel: str, purpose: str) -> tuple[str, list[Any]]:
    """The same status as `consent_status_subquery`, as a fixed SQL expression over
    `contact_column` with its parameters, for hand-written statements on the hot path."""
    table = connection.ops.quote_name(ConsentRecord._meta.db_table)
    sources = _person_sources()
    in_sources = ", ".join(["%s"] * len(sources))

    def latest(*, person: bool) -> str:
        where = f" AND r.source IN ({in_sources})" if person else ""
        return (
            f"(SELECT r.status FROM {table} r WHERE r.contact_id = {contact_column} "  # noqa: S608
            f"AND r.channel = %s AND r.purpose = %s{where} "
            "ORDER BY r.occurred_at DESC, r.id DESC LIMIT 1)"
        )

    sql = f"(CASE WHEN {latest(person=True)} = %s THEN %s ELSE {latest(person=False)} END)"
    params = [channel, purpose, *sources, _WITHDRAWN, _WITHDRAWN, channel, purpose]
    return sql, params


def contacts_with_consent(
    *, channel: str, purpose: str = MARKETING, queryset: QuerySet[Contact] | None = None
) -> QuerySet[Contact]:
    """Contacts whose current consent for (channel, purpose) is granted, in one query."""
    base = queryset if queryset is not None else Contact.objects.all()
    return base.annotate(_consent=consent_status_subquery(channel=channel, purpose=purpose)).filter(
        _consent=ConsentRecord.Status.GRANTED, is_erased=False
    )


def consent_current(contact_ids: Iterable[int]) -> dict[int, dict[tuple[str, str], str]]:
    """{contact_id: {(channel, purpose): status}} for every (channel, purpose) the ledger has
    an entry for, by the rule in this module's docstring, in one query."""
    ids = list(contact_ids)
    result: dict[int, dict[tuple[str, str], str]] = {cid: {} for cid in ids}
    person_word: dict[ConsentKey, str] = {}
    rows = (
        ConsentRecord.objects.filter(contact_id__in=ids)
        .order_by("contact_id", "channel", "purpose", "-occurred_at", "-id")
        .values_list("contact_id", "channel", "purpose", "status", "source")
    )
    for contact_id, channel, purpose, status, source in rows.iterator(chunk_size=2000):
        result[contact_id].setdefault((channel, purpose), status)
        if source in ConsentRecord.PERSON_SOURCES:
            person_word.setdefault((contact_id, channel, purpose), status)
    for (contact_id, channel, purpose), word in person_word.items():
        if word == _WITHDRAWN:
            result[contact_id][(channel, purpose)] = _WITHDRAWN
    return result


def consent_withdrawn_by_contact(keys: Iterable[ConsentKey]) -> set[ConsentKey]:
    """Of these (contact, channel, purpose), those the person withdrew themselves and did not
    give back: their latest entry from a person's source is a withdrawal. A grant from a
    source the business controls is refused for these. One query per 500 contacts, the
    latest entry per group picked in SQL, so a 100,000-row import costs 200 small queries, not
    100,000."""
    wanted = set(keys)
    if not wanted:
        return set()
    purposes = sorted({purpose for _, _, purpose in wanted})
    newer = ConsentRecord.objects.filter(
        contact_id=OuterRef("contact_id"),
        channel=OuterRef("channel"),
        purpose=OuterRef("purpose"),
        source__in=_person_sources(),
    ).filter(
        Q(occurred_at__gt=OuterRef("occurred_at"))
        | Q(occurred_at=OuterRef("occurred_at"), id__gt=OuterRef("id"))
    )
    withdrawn: set[ConsentKey] = set()
    for chunk in chunks(sorted({contact_id for contact_id, _, _ in wanted}), _CHUNK):
        latest_withdrawals = (
            ConsentRecord.objects.filter(
                contact_id__in=chunk,
                purpose__in=purposes,
                source__in=_person_sources(),
                status=_WITHDRAWN,
            )
            .filter(~Exists(newer))
            .values_list("contact_id", "channel", "purpose")
        )
        withdrawn.update(latest_withdrawals)
    return withdrawn & wanted


def suppressed(*, channel: str, address: str) -> bool:
    return Suppression.objects.filter(
        channel=channel, address_hash=address_hash(channel, address)
    ).exists()
