"""Recording what contacts do (views, purchases, any custom type), in batches.

`events_ingest` writes a batch of `EventInput`s (parsed by
`crm.services.event_input.event_input_parse`) with a
fixed number of queries: one duplicate check, one contact lookup per identifier kind (the
contact upsert only for new people or identities of several identifiers), two inserts, one
read-back, and at most two rollup updates. Replaying a batch is harmless: an event with a
client id already recorded for the same source is reported as a duplicate and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from django.db import connection, transaction
from django.db.models import DecimalField, F, JSONField, OuterRef, Subquery
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from core.batching import chunks
from core.db import rows_insert_ignoring_conflicts
from crm.models import Contact, Event
from crm.services.contact_input import ContactInput
from crm.services.contacts import contacts_upsert
from crm.services.event_input import EventInput
from crm.signals import events_ingested

logger = logging.getLogger(__name__)

_CHUNK = 500


@dataclass
class IngestResult:
    status: Literal["accepted", "duplicate"]
    event_id: int | None
    contact_id: int


def _roll_forward(field_name: str, contact_ids: Sequence[int], *, event_type: str = "") -> None:
    """Move each contact's field to the occurred_at of its latest event (of `event_type`,
    when given), never backwards: an index probe per contact, compiled once per chunk."""
    events = Event.objects.filter(contact_id=OuterRef("pk"))
    if event_type:
        events = events.filter(type=event_type)
    latest = Subquery(events.order_by("-occurred_at").values("occurred_at")[:1])
    for chunk in chunks(sorted(contact_ids), _CHUNK):
        # Coalesce because SQLite's MAX(NULL, x) is NULL where PostgreSQL's GREATEST is x.
        Contact.objects.filter(pk__in=chunk).update(
            **{field_name: Greatest(Coalesce(F(field_name), latest), latest)}
        )


def _existing_events(source: str, client_ids: Sequence[str]) -> dict[str, tuple[int, int, Any]]:
    """client id -> (event id, contact id, received_at) of what is already stored."""
    found: dict[str, tuple[int, int, Any]] = {}
    for chunk in chunks(sorted(set(client_ids)), _CHUNK):
        rows = Event.objects.filter(source=source, client_id__in=chunk).values_list(
            "client_id", "id", "contact_id", "received_at"
        )
        for client_id, event_id, contact_id, received_at in rows:
            found[client_id or ""] = (event_id, contact_id, received_at)
    return found


# The columns of crm_event an ingest writes (id is the database's).
_COLUMNS = (
    "contact_id",
    "type",
    "properties",
    "value",
    "currency",
    "occurred_at",
    "received_at",
    "source",
    "client_id",
)


def _insert_skipping_stored(
    events: Sequence[EventInput],
    contact_ids: Sequence[int],
    *,
    source: str,
    received_at: dt.datetime,
) -> dict[str, int]:
    """Insert events that carry client ids, skipping those whose (source, client id) is
    stored by now: {client id: event id} of the rows this call inserted.

    One INSERT … ON CONFLICT DO NOTHING run over all rows, its values adapted by the
    backend's operations directly: bulk_create's per-row, per-field machinery cost more
    than the insert itself. The read-back tells our rows apart from a concurrent request's
    by received_at."""
    ops = connection.ops
    properties = Event._meta.get_field("properties")
    value = Event._meta.get_field("value")
    assert isinstance(properties, JSONField) and isinstance(value, DecimalField)
    received = ops.adapt_datetimefield_value(received_at)
    params = [
        (
            contact_id,
            event.type,
            ops.adapt_json_value(event.properties, properties.encoder),
            ops.adapt_decimalfield_value(event.value, value.max_digits, value.decimal_places),
            event.currency,
            ops.adapt_datetimefield_value(event.occurred_at),
            received,
            source,
            event.client_id,
        )
        for event, contact_id in zip(events, contact_ids, strict=True)
    ]
    rows_insert_ignoring_conflicts(Event, _COLUMNS, params)
    stored = _existing_events(source, [event.client_id or "" for event in events])
    return {
        client_id: event_id
        for client_id, (event_id, _, stored_at) in stored.items()
        if stored_at == received_at
    }


# The column of Contact holding each kind of identity key (ContactInput.identity_keys).
_IDENTITY_COLUMN = {"external_id": "external_id", "email": "email_key", "phone": "phone"}


def _contacts_of(identities: Sequence[ContactInput], *, source: str) -> list[int]:
    """The contact id of each identity, creating contacts for those nobody holds.

    An identity of one identifier cannot merge anyone, so when every identity is of one
    identifier those a live contact holds are found with one query per identifier kind,
    and contacts_upsert sees only the rest (aliases, new people). An identity of several
    identifiers may merge or fill in contacts, so a batch with one goes to contacts_upsert
    whole, in order, as then no shortcut could tell where the others land.
    """
    keys = [identity.identity_keys() for identity in identities]
    if any(len(own) != 1 for own in keys):
        return [result.contact_id for result in contacts_upsert(identities, source=source)]
    found: dict[tuple[str, str], int] = {}
    for kind, column in _IDENTITY_COLUMN.items():
        values = sorted({value for [(key_kind, value)] in keys if key_kind == kind})
        for chunk in chunks(values, _CHUNK):
            held = Contact.objects.filter(**{f"{column}__in": chunk}, is_erased=False)
            for value, contact_id in held.values_list(column, "pk"):
                found[(kind, value)] = contact_id
    rest = [index for index, [key] in enumerate(keys) if key not in found]
    created = contacts_upsert([identities[index] for index in rest], source=source)
    ids = [found.get(key, 0) for [key] in keys]
    for index, result in zip(rest, created, strict=True):
        ids[index] = result.contact_id
    return ids


def _announce(*, contact_ids: list[int], event_types: set[str]) -> None:
    """Tell the layers above, after commit. The events are stored by now whatever a receiver
    does, so a receiver's failure is logged with its traceback rather than turned into an
    error for the client, who would otherwise retry a batch that was in fact recorded."""
    responses = events_ingested.send_robust(
        sender=Event, contact_ids=contact_ids, event_types=event_types
    )
    for receiver, response in responses:
        if isinstance(response, Exception):
            logger.error(
                "events_ingested receiver %r failed for %d contacts",
                receiver,
                len(contact_ids),
                exc_info=(type(response), response, response.__traceback__),
            )


@transaction.atomic
def events_ingest(
    inputs: Sequence[EventInput], *, source: str, announce: bool = True
) -> list[IngestResult]:
    """Record a batch of events, one result per input, in input order.

    An event whose (source, client id) is already stored, or repeats an earlier one of the
    same batch, is a "duplicate" and changes nothing. Contacts named by identifiers are found
    (aliases included) or created. Contact.last_activity_at (any event) and last_purchase_at
    (order_completed) move to the latest occurred_at, never backwards, so backfills are safe.
    The layers above hear of it through crm.signals.events_ingested after commit, unless
    `announce` is False: a file import announces once at its end (events_announce_received),
    so that no rule judges a contact on the part of its history imported so far.
    """
    results: list[IngestResult | None] = [None] * len(inputs)
    fresh, repeats = _sort_out_duplicates(inputs, results, source=source)
    contact_of = _contact_ids(inputs, fresh, source=source)
    _store(inputs, fresh, contact_of, results, source=source)
    for index, first in repeats:
        earlier = results[first]
        assert earlier is not None
        results[index] = IngestResult("duplicate", earlier.event_id, earlier.contact_id)
    _contacts_touched(inputs, fresh, results, announce=announce)
    final = [result for result in results if result is not None]
    assert len(final) == len(inputs)
    return final


def _sort_out_duplicates(
    inputs: Sequence[EventInput], results: list[IngestResult | None], *, source: str
) -> tuple[list[int], list[tuple[int, int]]]:
    """Settle the inputs already stored (as duplicates, in `results`); return the indexes to
    store and the (index, index of its first) of repeats within the batch."""
    existing = _existing_events(source, [e.client_id for e in inputs if e.client_id])
    first_of: dict[str, int] = {}
    repeats: list[tuple[int, int]] = []
    fresh: list[int] = []
    for index, event in enumerate(inputs):
        client_id = event.client_id
        if client_id in existing:
            event_id, contact_id, _ = existing[client_id]
            results[index] = IngestResult("duplicate", event_id, contact_id)
        elif client_id and client_id in first_of:
            repeats.append((index, first_of[client_id]))
        else:
            if client_id:
                first_of[client_id] = index
            fresh.append(index)
    return fresh, repeats


def _contact_ids(inputs: Sequence[EventInput], fresh: list[int], *, source: str) -> dict[int, int]:
    """{input index: contact id}, one identity per distinct identifier set (a batch usually
    names few people often)."""

    def key_of(index: int) -> tuple[str | None, str | None, str | None]:
        contact = inputs[index].contact
        return (contact.external_id or None, contact.email or None, contact.phone or None)

    identity_of: dict[tuple[str | None, str | None, str | None], int] = {}
    identities: list[ContactInput] = []
    for index in fresh:
        key = key_of(index)
        if key not in identity_of:
            identity_of[key] = len(identities)
            identities.append(ContactInput(external_id=key[0], email=key[1], phone=key[2]))
    identity_ids = _contacts_of(identities, source=source)
    return {index: identity_ids[identity_of[key_of(index)]] for index in fresh}


def _store(
    inputs: Sequence[EventInput],
    fresh: list[int],
    contact_of: dict[int, int],
    results: list[IngestResult | None],
    *,
    source: str,
) -> None:
    """Insert the fresh events: those without a client id in bulk, those with one skipping
    any a concurrent request stored first (reported as a duplicate of its row)."""
    received_at = timezone.now()
    anonymous = [index for index in fresh if not inputs[index].client_id]
    identified = [index for index in fresh if inputs[index].client_id]
    rows = [
        Event(
            contact_id=contact_of[index],
            type=inputs[index].type,
            occurred_at=inputs[index].occurred_at,
            properties=inputs[index].properties,
            value=inputs[index].value,
            currency=inputs[index].currency,
            source=source,
            client_id=None,
            received_at=received_at,
        )
        for index in anonymous
    ]
    Event.objects.bulk_create(rows, batch_size=_CHUNK)
    for index, row in zip(anonymous, rows, strict=True):
        results[index] = IngestResult("accepted", row.pk, contact_of[index])
    if not identified:
        return
    inserted = _insert_skipping_stored(
        [inputs[index] for index in identified],
        [contact_of[index] for index in identified],
        source=source,
        received_at=received_at,
    )
    lost = [
        inputs[index].client_id or ""
        for index in identified
        if inputs[index].client_id not in inserted
    ]
    stored = _existing_events(source, lost) if lost else {}
    for index in identified:
        client_id = inputs[index].client_id or ""
        if client_id in inserted:
            results[index] = IngestResult("accepted", inserted[client_id], contact_of[index])
        else:
            event_id, contact_id, _ = stored[client_id]
            results[index] = IngestResult("duplicate", event_id, contact_id)


def _contacts_touched(
    inputs: Sequence[EventInput],
    fresh: list[int],
    results: list[IngestResult | None],
    *,
    announce: bool,
) -> None:
    """Roll the accepted events' contacts forward and, with `announce`, tell the layers
    above once the transaction commits."""
    active: set[int] = set()
    purchasing: set[int] = set()
    accepted_types: set[str] = set()
    for index in fresh:
        result = results[index]
        if result is None or result.status != "accepted":
            continue
        accepted_types.add(inputs[index].type)
        active.add(result.contact_id)
        if inputs[index].type == Event.ORDER_COMPLETED:
            purchasing.add(result.contact_id)
    _roll_forward("last_activity_at", sorted(active))
    _roll_forward("last_purchase_at", sorted(purchasing), event_type=Event.ORDER_COMPLETED)
    if active and announce:
        contact_ids = sorted(active)
        transaction.on_commit(
            lambda: _announce(contact_ids=contact_ids, event_types=accepted_types)
        )


ANNOUNCE_CHUNK = 5000


def events_announce_received(*, source: str, since: dt.datetime) -> int:
    """Announce the contacts of the events `source` received since `since` (a whole import),
    in chunks, streaming the distinct ids from one query. Returns how many contacts."""
    received = Event.objects.filter(source=source, received_at__gte=since)
    types = set(received.order_by().values_list("type", flat=True).distinct())
    chunk: list[int] = []
    total = 0
    ids = received.order_by("contact_id").values_list("contact_id", flat=True).distinct()
    for contact_id in ids.iterator(chunk_size=ANNOUNCE_CHUNK):
        chunk.append(contact_id)
        if len(chunk) >= ANNOUNCE_CHUNK:
            _announce(contact_ids=chunk, event_types=types)
            total, chunk = total + len(chunk), []
    if chunk:
        _announce(contact_ids=chunk, event_types=types)
        total += len(chunk)
    return total
