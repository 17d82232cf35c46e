"""Writes for segments: refreshing memberships (in full, for some contacts, or for contacts
queued by new events), and resolving memberships when two contacts merge.

A refresh is a set difference computed by the database, one keyset batch of contacts at a
time, each batch in its own transaction:

    INSERT INTO membership (...) SELECT ... FROM (<the segment's query>) WHERE NOT EXISTS
        (a current membership) RETURNING contact_id                                 -- entered
    UPDATE membership SET exited_at = now WHERE <current, in the batch> AND contact_id NOT IN
        (<the segment's query>) RETURNING contact_id                                -- left

Both PostgreSQL and SQLite (3.35+) support RETURNING, so the ids that changed come back from
the same statements that changed them, and are announced through
segments.signals.membership_changed after each batch commits.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from crm.models import Contact
from segments.compiler import segment_queryset
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


@dataclass(frozen=True)
class RefreshProgress:
    segment: Segment
    checked: int  # contacts looked at so far
    total: int  # contacts to look at
    entered: int
    exited: int


ProgressCallback = Callable[[RefreshProgress], None]


def _ids(rows: Iterable[Sequence[Any]]) -> list[int]:
    return sorted(int(row[0]) for row in rows)


def _refresh_batch(
    *, segment: Segment, batch: QuerySet[Contact], scope: Q, now: dt.datetime
) -> tuple[list[int], list[int]]:
    """Apply the set difference for the contacts of one batch. `batch` is the segment's
    query restricted to the batch; `scope` restricts memberships to the same contacts."""
    table = connection.ops.quote_name(SegmentMembership._meta.db_table)
    matching_sql, matching_params = batch.order_by().values("id").query.sql_with_params()
    stamp = connection.ops.adapt_datetimefield_value(now)
    scoped_sql, scoped_params = (
        SegmentMembership.objects.filter(segment_id=segment.pk, exited_at__isnull=True)
        .filter(scope)
        .order_by()
        .values("id")
        .query.sql_with_params()
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Serialise refreshes of one segment (a no-op lock on SQLite, whose write
        # transactions are serial already).
        list(Segment.objects.select_for_update().filter(pk=segment.pk).values_list("pk"))
        # Only quoted names and SQL compiled by Django are interpolated; values are params.
        cursor.execute(
            f"INSERT INTO {table} (segment_id, contact_id, entered_at, exited_at) "  # noqa: S608
            f"SELECT %s, matching.id, %s, NULL FROM ({matching_sql}) matching "
            f"WHERE NOT EXISTS (SELECT 1 FROM {table} current_row "
            f"WHERE current_row.segment_id = %s AND current_row.contact_id = matching.id "
            f"AND current_row.exited_at IS NULL) RETURNING contact_id",
            [segment.pk, stamp, *matching_params, segment.pk],
        )
        entered = _ids(cursor.fetchall())
        cursor.execute(
            f"UPDATE {table} SET exited_at = %s WHERE id IN ({scoped_sql}) "  # noqa: S608
            f"AND contact_id NOT IN ({matching_sql}) RETURNING contact_id",
            [stamp, *scoped_params, *matching_params],
        )
        exited = _ids(cursor.fetchall())
        if entered or exited:
            segment_id = segment.pk
            transaction.on_commit(
                lambda: membership_changed.send(
                    sender=Segment, segment_id=segment_id, entered_ids=entered, exited_ids=exited
                )
            )
    return entered, exited


def _full_batches(batch_size: int) -> Iterable[tuple[Q, Q, int]]:
    """(contact filter, membership filter, contacts in batch) for consecutive id ranges,
    found by keyset: one index probe per batch, no list of every id."""
    low = 0
    while True:
        ids = Contact.objects.filter(id__gt=low).order_by("id").values_list("id", flat=True)
        high = next(iter(ids[batch_size - 1 : batch_size]), None)
        if high is None:
            remaining = Contact.objects.filter(id__gt=low).count()
            # The last range is open, so memberships of contacts past the end exit too.
            yield Q(id__gt=low), Q(contact_id__gt=low), remaining
            return
        yield Q(id__gt=low, id__lte=high), Q(contact_id__gt=low, contact_id__lte=high), batch_size
        low = high


def _id_batches(contact_ids: Iterable[int], batch_size: int) -> Iterable[tuple[Q, Q, int]]:
    ordered = sorted(set(contact_ids))
    for start in range(0, len(ordered), batch_size):
        chunk = ordered[start : start + batch_size]
        yield Q(id__in=chunk), Q(contact_id__in=chunk), len(chunk)


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
    matching = segment_queryset(segment, now=now)
    if contact_ids is None:
        total = Contact.objects.count()
        batches = _full_batches(batch_size)
    else:
        contact_ids = sorted(set(contact_ids))
        total = len(contact_ids)
        batches = _id_batches(contact_ids, batch_size)
    result = RefreshResult()
    for contact_scope, membership_scope, count in batches:
        entered, exited = _refresh_batch(
            segment=segment, batch=matching.filter(contact_scope), scope=membership_scope, now=now
        )
        result.checked += count
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
        now = timezone.now()
        for start in range(0, len(ids), 1000):
            SegmentPendingContact.objects.bulk_create(
                [
                    SegmentPendingContact(contact_id=cid, queued_at=now)
                    for cid in ids[start : start + 1000]
                ],
                ignore_conflicts=True,
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
