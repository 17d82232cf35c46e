"""Putting contacts into a journey: one INSERT … SELECT per chunk of entrants, with the
journey's re-entry policy enforced by the same statement (NOT EXISTS over the contact's
earlier enrollments) and the partial unique constraint (one active enrollment per journey,
contact and entry key) as the last guard: conflicts are ignored, so two concurrent starts of
one contact make one enrollment.

Entrants come as (contact id, entry properties) pairs (a trigger action, a segment's entered
ids) or as a Contact queryset (every contact of a segment), read by keyset one chunk of ids
at a time. Either way a chunk travels as one JSON parameter that the database unpacks."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import QuerySet
from django.utils import timezone

from core.batching import chunks
from crm.models import Contact
from journeys.flow import Flow
from journeys.models import Enrollment, Journey

logger = logging.getLogger(__name__)

CHUNK = 5000

# Why an entrant did not enter (the keys of StartResult.skipped).
SKIP_DISABLED = "journey disabled"
SKIP_PAUSED = "journey paused"
SKIP_UNPUBLISHED = "journey has no published version"
SKIP_NO_KEY = "entry event lacks the re-entry key"
SKIP_TWICE = "listed twice"
SKIP_REENTRY = "re-entry policy (in the journey now or entered before)"
SKIP_NO_CONTACT = "contact gone or erased"

Entrant = tuple[int, Mapping[str, Any]]


@dataclass
class StartResult:
    created_ids: list[int] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)

    @property
    def created(self) -> int:
        return len(self.created_ids)

    def skip_reason(self) -> str:
        """The reason most entrants were skipped for ("" when none was): what a single
        entrant's caller shows."""
        return self.skipped.most_common(1)[0][0] if self.skipped else ""


@dataclass(frozen=True)
class _Target:
    """What every row of one start shares."""

    journey: Journey
    version_id: int
    first_step: str
    now: dt.datetime


def _closed_reason(journey: Journey) -> str:
    if not journey.enabled:
        return SKIP_DISABLED
    if journey.status == Journey.Status.PAUSED:
        return SKIP_PAUSED
    if journey.current_version_id is None:
        return SKIP_UNPUBLISHED
    return ""


def enrollments_start(
    *,
    journey: Journey,
    entrants: Iterable[Entrant] | QuerySet[Contact],
    now: dt.datetime | None = None,
    source: str,
) -> StartResult:
    """Enroll the entrants the journey's re-entry policy lets in, at its first step, due
    now; the engine is asked to advance once this commits. `source` names the caller in the
    log (e.g. "trigger", "segment")."""
    now = now or timezone.now()
    journey.refresh_from_db(fields=["enabled", "status", "current_version"])
    result = StartResult()
    closed = _closed_reason(journey)
    version = journey.current_version
    first = Flow(version.steps).first() if version is not None else None
    if not closed and first is None:
        closed = SKIP_UNPUBLISHED
    if closed or version is None or first is None:
        result.skipped[closed] += (
            entrants.count() if isinstance(entrants, QuerySet) else len(list(entrants))
        )
        return result
    target = _Target(journey=journey, version_id=version.pk, first_step=first, now=now)
    with transaction.atomic():
        if isinstance(entrants, QuerySet):
            _start_contacts(target, entrants, result)
        else:
            _start_pairs(target, entrants, result)
        if result.created_ids:
            from journeys.tasks import journeys_advance_due

            journeys_advance_due.delay_on_commit()
    logger.info(
        "journey %s: %d entered from %s, skipped %s",
        journey.slug,
        result.created,
        source,
        dict(result.skipped),
    )
    return result


def _entry_key(journey: Journey, properties: Mapping[str, Any]) -> str | None:
    """The entry key of an entrant: "" unless the journey is keyed; None when it is keyed
    and the properties lack the key."""
    if journey.reentry_mode != Journey.Reentry.ONCE_PER_KEY:
        return ""
    value = properties.get(journey.reentry_key)
    if value is None or value == "":
        return None
    key = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return key[: Enrollment._meta.get_field("entry_key").max_length]


def _start_pairs(target: _Target, entrants: Iterable[Entrant], result: StartResult) -> None:
    rows: dict[tuple[int, str], Mapping[str, Any]] = {}
    for contact_id, properties in entrants:
        key = _entry_key(target.journey, properties)
        if key is None:
            result.skipped[SKIP_NO_KEY] += 1
        elif (int(contact_id), key) in rows:
            result.skipped[SKIP_TWICE] += 1
        else:
            rows[(int(contact_id), key)] = properties
    for chunk in chunks(list(rows.items()), CHUNK):
        _insert_chunk(target, chunk, result)


def _insert_chunk(
    target: _Target, chunk: list[tuple[tuple[int, str], Mapping[str, Any]]], result: StartResult
) -> None:
    """One INSERT … SELECT for ((contact id, entry key), entry properties) rows, and why the
    rows it left out were left out."""
    # One JSON parameter: no bound-parameter limit applies to the chunk's size.
    payload = json.dumps(
        [{"c": c, "k": k, "p": dict(p)} for (c, k), p in chunk], cls=DjangoJSONEncoder
    )
    created = _insert(target, [payload])
    result.created_ids.extend(enrollment_id for enrollment_id, _, _ in created)
    entered = {(contact_id, key) for _, contact_id, key in created}
    left_out = [pair for pair, _ in chunk if pair not in entered]
    if left_out:
        _classify(left_out, result)


def _classify(left_out: list[tuple[int, str]], result: StartResult) -> None:
    """Entrants the insert left out were refused by the re-entry policy, unless their
    contact is gone or erased: one query for the chunk, its ids in one JSON parameter."""
    contacts = connection.ops.quote_name(Contact._meta.db_table)
    ids = (
        "SELECT (x)::bigint FROM jsonb_array_elements_text(%s::jsonb) AS x"
        if _postgres()
        else "SELECT value FROM json_each(%s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {contacts} WHERE id IN ({ids}) AND is_erased = %s",  # noqa: S608
            [json.dumps(sorted({contact_id for contact_id, _ in left_out})), False],
        )
        present = {int(row[0]) for row in cursor.fetchall()}
    for contact_id, _ in left_out:
        result.skipped[SKIP_REENTRY if contact_id in present else SKIP_NO_CONTACT] += 1


def _start_contacts(target: _Target, contacts: QuerySet[Contact], result: StartResult) -> None:
    erased = contacts.filter(is_erased=True).count()
    if erased:
        result.skipped[SKIP_NO_CONTACT] += erased
    contacts = contacts.filter(is_erased=False).order_by()
    if target.journey.reentry_mode == Journey.Reentry.ONCE_PER_KEY:
        # A contact entering by segment has no entry event to take a key from.
        result.skipped[SKIP_NO_KEY] += contacts.count()
        return
    # Each chunk's ids are read, then sent back in the insert's JSON parameter, rather than
    # the insert selecting from a subquery on contacts: that subquery is planned from the
    # contacts' statistics, and right after a bulk import they said "4 rows" for 5,000, so
    # PostgreSQL scanned every enrollment once per contact (9 s a chunk at 40,000).
    empty: Mapping[str, Any] = {}
    low = 0
    while True:
        ids = list(contacts.filter(pk__gt=low).order_by("pk").values_list("pk", flat=True)[:CHUNK])
        if not ids:
            return
        _insert_chunk(target, [((contact_id, ""), empty) for contact_id in ids], result)
        low = ids[-1]


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _payload_source() -> str:
    """Rows (contact_id, entry_key, props) out of one JSON parameter: one bound value per
    chunk, whatever its size, and no SQL built from entrant data."""
    if _postgres():
        return (
            "SELECT (r->>'c')::bigint AS contact_id, r->>'k' AS entry_key, r->'p' AS props "
            "FROM jsonb_array_elements(%s::jsonb) AS r"
        )
    return (
        "SELECT json_extract(value, '$.c') AS contact_id, json_extract(value, '$.k') AS "
        "entry_key, json(json_extract(value, '$.p')) AS props FROM json_each(%s)"
    )


def _reentry_sql(journey: Journey, now: dt.datetime) -> tuple[str, list[Any]]:
    """The condition under which an earlier enrollment `e` keeps entrant `s` out."""
    if journey.reentry_mode == Journey.Reentry.ONCE_PER_DAYS:
        cutoff = now - dt.timedelta(days=int(journey.reentry_days or 0))
        return "AND (e.status = %s OR e.entered_at > %s)", [
            Enrollment.Status.ACTIVE,
            connection.ops.adapt_datetimefield_value(cutoff),
        ]
    if journey.reentry_mode == Journey.Reentry.ONCE_PER_KEY:
        return "AND e.entry_key = s.entry_key", []
    return "", []


_COLUMNS = (
    "journey_id",
    "version_id",
    "contact_id",
    "entry_key",
    "entry_properties",
    "status",
    "step_id",
    "sequence",
    "due_at",
    "entered_at",
    "step_started_at",
    "exit_reason",
    "awaiting_event",
)


def _insert(target: _Target, source_params: list[Any]) -> list[tuple[int, int, str]]:
    """One INSERT … SELECT of the source's rows that the re-entry policy admits; returns
    (enrollment id, contact id, entry key) of the rows written."""
    quote = connection.ops.quote_name
    table = quote(Enrollment._meta.db_table)
    contacts = quote(Contact._meta.db_table)
    stamp = connection.ops.adapt_datetimefield_value(target.now)
    reentry, reentry_params = _reentry_sql(target.journey, target.now)
    # Only quoted names and SQL compiled by Django or written here are interpolated; every
    # value is a parameter.
    sql = (
        f"INSERT INTO {table} ({', '.join(quote(c) for c in _COLUMNS)}) "  # noqa: S608
        f"SELECT %s, %s, s.contact_id, s.entry_key, s.props, %s, %s, 0, %s, %s, %s, '', '' "
        f"FROM ({_payload_source()}) s "
        f"WHERE EXISTS (SELECT 1 FROM {contacts} c WHERE c.id = s.contact_id "
        f"AND c.is_erased = %s) "
        f"AND NOT EXISTS (SELECT 1 FROM {table} e WHERE e.journey_id = %s "
        f"AND e.contact_id = s.contact_id {reentry}) "
        f"ON CONFLICT DO NOTHING RETURNING id, contact_id, entry_key"
    )
    params = [
        target.journey.pk,
        target.version_id,
        Enrollment.Status.ACTIVE,
        target.first_step,
        stamp,
        stamp,
        stamp,
        *source_params,
        False,
        target.journey.pk,
        *reentry_params,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(int(row[0]), int(row[1]), str(row[2])) for row in cursor.fetchall()]
