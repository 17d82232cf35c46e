"""Writes for segments: refreshing memberships (in full, for some contacts, or for contacts
queued by new events), and resolving memberships when two contacts merge.

A refresh is a set difference computed by the database, one keyset batch of contacts at a
time, each batch in its own transaction:

    WITH matching AS (<the segment's query, for the batch's id range>),
         current_rows AS (<the batch's current memberships>)
    SELECT id, 1 FROM (matching EXCEPT current_rows)             -- entering
    UNION ALL SELECT contact_id, 0 FROM (current_rows EXCEPT matching)  -- leaving

then an INSERT of the entering (a new row each, so history is kept) and an UPDATE closing
the leaving, both RETURNING the ids they changed, which are announced through
segments.signals.membership_changed after the batch commits. The segment's query runs once
per batch, and its event subqueries are narrowed to the batch's id range
(segment_queryset(within=...)), so a full refresh reads each event about once in all,
through the (type, contact, occurred_at) index: close to what one query over every
contact costs, while no batch holds more than its own ids in memory or one transaction
open for long. Both PostgreSQL and SQLite (3.35+) support the CTEs and RETURNING used.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from core.batching import chunks, max_params_per_statement
from core.db import rows_insert_ignoring_conflicts
from crm.models import Contact
from segments.compiler import ContactRange, segment_queryset
from segments.models.definitions import (
    Segment,
    SegmentMembership,
    SegmentPendingContact,
    SegmentSizeSnapshot,
)
from segments.selectors import segments_depending_on_clock, segments_refresh_order
from segments.signals import membership_changed

logger = logging.getLogger(__name__)


def _batch_size() -> int:
    return int(getattr(settings, "SEGMENT_REFRESH_BATCH_SIZE", 5000))


@dataclass
class RefreshResult:
    """Who entered and who left. With collect_ids=False (a full refresh of millions) only
    the counts are kept; the ids still go out batch by batch through the signal."""

    entered_ids: list[int] = field(default_factory=list)
    exited_ids: list[int] = field(default_factory=list)
    entered: int = 0
    exited: int = 0
    checked: int = 0
    size: int = 0
    # Time spent in membership_changed receivers (their queueing of the ids), part of the
    # refresh's wall time but not of its own work.
    announce_seconds: float = 0.0


@dataclass(frozen=True)
class RefreshProgress:
    segment: Segment
    checked: int  # contacts looked at so far
    total: int  # contacts to look at
    entered: int
    exited: int


ProgressCallback = Callable[[RefreshProgress], None]


@dataclass(frozen=True)
class _Batch:
    """One batch of a refresh: a range of contact ids, and for an incremental refresh the
    given ids within it."""

    within: ContactRange
    ids: list[int] | None
    count: int  # contacts in the batch, for progress

    def members(self) -> Q:
        """The batch's contacts, as a filter on memberships."""
        if self.ids is None:
            return self.within.q("contact_id")
        return self.within.q("contact_id") & Q(contact_id__in=self.ids)


def _refresh_batch(
    *, segment: Segment, batch: _Batch, now: dt.datetime, result: RefreshResult
) -> tuple[list[int], list[int]]:
    """Apply the set difference for the contacts of one batch, in one transaction; the
    time its receivers take is added to result.announce_seconds."""
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    matching = segment_queryset(segment, now=now, within=batch.within)
    if batch.ids is not None:
        matching = matching.filter(id__in=batch.ids)
    matching_sql, matching_params = matching.order_by().values("id").query.sql_with_params()
    current_sql, current_params = (
        SegmentMembership.objects.filter(segment_id=segment.pk, exited_at__isnull=True)
        .filter(batch.members())
        .order_by()
        .values("contact_id")
        .query.sql_with_params()
    )
    stamp = connection.ops.adapt_datetimefield_value(now)
    with transaction.atomic(), connection.cursor() as cursor:
        # Serialise refreshes of one segment (a no-op lock on SQLite, whose write
        # transactions are serial already).
        list(Segment.objects.select_for_update().filter(pk=segment.pk).values_list("pk"))
        # Both sides of the difference in one statement, so the segment's query runs once
        # per batch: a CTE named twice is materialised by PostgreSQL (12+) and SQLite
        # (3.35+). EXCEPT rather than NOT EXISTS / NOT IN: a set operation whose plan does
        # not hang on row estimates, which are stale right after a big refresh (a nested
        # loop over every current member per matching contact was the PostgreSQL plan
        # then). At most one batch of ids comes back. Only quoted names and SQL compiled
        # by Django are interpolated; values are params.
        cursor.execute(
            f"WITH matching AS ({matching_sql}), current_rows AS ({current_sql}) "  # noqa: S608
            f"SELECT entering.id, 1 FROM (SELECT id FROM matching "
            f"EXCEPT SELECT contact_id FROM current_rows) entering "
            f"UNION ALL SELECT leaving.contact_id, 0 FROM (SELECT contact_id FROM current_rows "
            f"EXCEPT SELECT id FROM matching) leaving",
            [*matching_params, *current_params],
        )
        entering: list[int] = []
        leaving: list[int] = []
        for contact_id, enters in cursor.fetchall():
            (entering if enters else leaving).append(int(contact_id))
        # RETURNING reports what the writes did, should a row have changed since the
        # difference was read (a contact deleted, a merge closing a stay).
        contacts = connection.ops.quote_name(Contact._meta.db_table)
        entered: list[int] = []
        for chunk in chunks(sorted(entering), max_params_per_statement()):
            cursor.execute(
                f"INSERT INTO {table} (segment_id, contact_id, entered_at, exited_at) "  # noqa: S608
                f"SELECT %s, id, %s, NULL FROM {contacts} "
                f"WHERE id IN ({', '.join(['%s'] * len(chunk))}) RETURNING contact_id",
                [segment.pk, stamp, *chunk],
            )
            entered.extend(int(row[0]) for row in cursor.fetchall())
        exited: list[int] = []
        for chunk in chunks(sorted(leaving), max_params_per_statement()):
            cursor.execute(
                f"UPDATE {table} SET exited_at = %s WHERE segment_id = %s "  # noqa: S608
                f"AND exited_at IS NULL AND contact_id IN ({', '.join(['%s'] * len(chunk))}) "
                f"RETURNING contact_id",
                [stamp, segment.pk, *chunk],
            )
            exited.extend(int(row[0]) for row in cursor.fetchall())
        entered.sort()
        exited.sort()
        if entered or exited:
            segment_id = segment.pk

            def announce() -> None:
                started = time.perf_counter()
                membership_changed.send(
                    sender=Segment, segment_id=segment_id, entered_ids=entered, exited_ids=exited
                )
                result.announce_seconds += time.perf_counter() - started

            transaction.on_commit(announce)
    return entered, exited


def _full_batches(batch_size: int) -> Iterable[_Batch]:
    """Consecutive id ranges of batch_size contacts, found by keyset: one index probe per
    batch, no list of every id."""
    low = 0
    while True:
        ids = Contact.objects.filter(id__gt=low).order_by("id").values_list("id", flat=True)
        # The batch's last id, and the next one if there is one.
        edge = list(ids[batch_size - 1 : batch_size + 1])
        if len(edge) < 2:
            remaining = batch_size if edge else Contact.objects.filter(id__gt=low).count()
            # The last range is open, so memberships of contacts past the end exit too.
            yield _Batch(ContactRange(low), None, remaining)
            return
        yield _Batch(ContactRange(low, edge[0]), None, batch_size)
        low = edge[0]


def _id_batches(contact_ids: Iterable[int], batch_size: int) -> Iterable[_Batch]:
    for chunk in chunks(sorted(set(contact_ids)), batch_size):
        yield _Batch(ContactRange(chunk[0] - 1, chunk[-1]), chunk, len(chunk))


def segment_size_record(*, segment: Segment, now: dt.datetime | None = None) -> int:
    """Count the current members, store the count on the segment and in today's snapshot."""
    now = now or timezone.now()
    size = SegmentMembership.objects.filter(segment_id=segment.pk, exited_at__isnull=True).count()
    Segment.objects.filter(pk=segment.pk).update(size=size, last_refreshed_at=now)
    SegmentSizeSnapshot.objects.update_or_create(
        segment_id=segment.pk, date=now.astimezone(dt.UTC).date(), defaults={"size": size}
    )
    segment.size, segment.last_refreshed_at = size, now
    return size


def segment_refresh(
    *,
    segment: Segment,
    contact_ids: Iterable[int] | None = None,
    now: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
    collect_ids: bool = True,
) -> RefreshResult:
    """Bring the segment's current memberships in line with its definition: for every
    contact, or only for `contact_ids` (an incremental refresh after new events). Contacts
    that match and are not current members enter (a new row, so a return is a new stay);
    current members that no longer match leave (their row gets exited_at)."""
    now = now or timezone.now()
    batch_size = _batch_size()
    if contact_ids is None:
        # Only progress needs the total (a count of every contact).
        total = Contact.objects.count() if progress is not None else 0
        batches = _full_batches(batch_size)
    else:
        contact_ids = sorted(set(contact_ids))
        total = len(contact_ids)
        batches = _id_batches(contact_ids, batch_size)
    result = RefreshResult()
    for batch in batches:
        entered, exited = _refresh_batch(segment=segment, batch=batch, now=now, result=result)
        result.checked += batch.count
        result.entered += len(entered)
        result.exited += len(exited)
        if collect_ids:
            result.entered_ids.extend(entered)
            result.exited_ids.extend(exited)
        if progress is not None:
            progress(
                RefreshProgress(
                    segment, min(result.checked, total), total, result.entered, result.exited
                )
            )
    result.size = segment_size_record(segment=segment, now=now)
    logger.info(
        "segment %s refreshed: %d checked, %d entered, %d left, size %d",
        segment.slug,
        result.checked,
        result.entered,
        result.exited,
        result.size,
    )
    return result


def segments_refresh(
    *,
    segments: Iterable[Segment] | None = None,
    contact_ids: Iterable[int] | None = None,
    with_dependents: bool = True,
    now: dt.datetime | None = None,
    progress: ProgressCallback | None = None,
    collect_ids: bool = True,
) -> dict[str, RefreshResult]:
    """Refresh several segments (default: every active one), each after the segments it
    refers to, and with the segments that refer to them. Returns {slug: result}."""
    now = now or timezone.now()
    chosen = (
        list(segments) if segments is not None else list(Segment.objects.filter(is_active=True))
    )
    ids = sorted(set(contact_ids)) if contact_ids is not None else None
    results: dict[str, RefreshResult] = {}
    for segment in segments_refresh_order(chosen, with_dependents=with_dependents):
        results[segment.slug] = segment_refresh(
            segment=segment, contact_ids=ids, now=now, progress=progress, collect_ids=collect_ids
        )
    return results


def segments_refresh_clock_dependent(*, now: dt.datetime | None = None) -> dict[str, RefreshResult]:
    """The scheduled refresh: segments whose answer moves with time alone (sliding behaviour
    windows, days since last activity or purchase), in full."""
    return segments_refresh(
        segments=segments_depending_on_clock(), with_dependents=False, now=now, collect_ids=False
    )


# --- Incremental refresh after events -----------------------------------------------------


def segment_contacts_queue(*, contact_ids: Iterable[int]) -> bool:
    """Queue contacts for an incremental refresh. Returns True when the queue was empty, so
    the caller enqueues a drain task; otherwise one is already on its way and will take
    these too (the scheduled refresh drains whatever a lost race left behind)."""
    ids = sorted(set(contact_ids))
    if not ids:
        return False
    with transaction.atomic():
        was_empty = not SegmentPendingContact.objects.exists()
        stamp = connection.ops.adapt_datetimefield_value(timezone.now())
        rows_insert_ignoring_conflicts(
            SegmentPendingContact, ("contact_id", "queued_at"), [(cid, stamp) for cid in ids]
        )
    return was_empty


def segments_refresh_pending(*, limit: int | None = None) -> int:
    """Drain the queue: claim up to a batch of queued contacts, refresh every active segment
    for them, repeat until the queue is empty. Returns how many contacts were refreshed."""
    limit = limit or _batch_size()
    done = 0
    while True:
        with transaction.atomic():
            claimed = list(
                SegmentPendingContact.objects.order_by("contact_id").values_list(
                    "contact_id", flat=True
                )[:limit]
            )
            if not claimed:
                return done
            # Deleted before the refresh reads: an event arriving meanwhile queues the
            # contact again instead of being lost.
            SegmentPendingContact.objects.filter(contact_id__in=claimed).delete()
        try:
            segments_refresh(contact_ids=claimed)
        except Exception:
            # Put them back so the next drain (or the scheduled one) tries again.
            segment_contacts_queue(contact_ids=claimed)
            raise
        done += len(claimed)


# --- Merges --------------------------------------------------------------------------------


def segment_memberships_merge(*, survivor_id: int, duplicate_id: int) -> int:
    """Before crm moves the duplicate's rows to the survivor: where both are current members
    of a segment, close the duplicate's stay (kept as history) so that the survivor keeps one
    current row. Returns how many were closed."""
    both = SegmentMembership.objects.filter(contact_id=survivor_id, exited_at__isnull=True).values(
        "segment_id"
    )
    return SegmentMembership.objects.filter(
        contact_id=duplicate_id, exited_at__isnull=True, segment_id__in=both
    ).update(exited_at=timezone.now())
