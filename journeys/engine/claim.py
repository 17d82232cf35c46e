"""Claiming due enrollments: one statement that moves the due rows' `due_at` to a lease and
returns their ids. The lease is the claim token: a worker advances only the rows whose
`due_at` still equals the lease it set, so a row reclaimed after its lease ran out (the
worker died or stalled) is advanced by one worker only, and a dead worker's rows come back
on their own when the lease ends. A paused journey's rows are not claimed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from django.db import connection, transaction

from journeys.models import Enrollment, Journey

# Long enough for a batch's rounds and its webhooks; a killed worker's rows wait this long.
LEASE = dt.timedelta(minutes=5)


def claim_lease(now: dt.datetime) -> dt.datetime:
    """The lease a claim at `now` sets. Claims are told apart by their instant (microseconds),
    so the lease of one claim is not the lease of another."""
    return now + LEASE


def _tables() -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(Enrollment._meta.db_table), quote(Journey._meta.db_table)


def claim_statement(*, now: dt.datetime, limit: int, lease: dt.datetime) -> tuple[str, list[Any]]:
    """The claim's SQL and parameters for this database (EXPLAIN shows its plan)."""
    enrollments, journeys = _tables()
    ops = connection.ops
    at, until = ops.adapt_datetimefield_value(now), ops.adapt_datetimefield_value(lease)
    active = Enrollment.Status.ACTIVE
    inner = (
        f"SELECT e.id FROM {enrollments} e WHERE e.status = %s AND e.due_at IS NOT NULL "  # noqa: S608
        f"AND e.due_at <= %s AND e.journey_id IN (SELECT j.id FROM {journeys} j "
        "WHERE j.status = %s) ORDER BY e.due_at LIMIT %s"
    )
    params: list[Any] = [active, at, Journey.Status.ACTIVE, limit]
    if connection.vendor == "postgresql":
        inner += " FOR UPDATE OF e SKIP LOCKED"
        sql = f"UPDATE {enrollments} SET due_at = %s WHERE id IN ({inner}) RETURNING id"  # noqa: S608
        return sql, [until, *params]
    sql = (
        f"UPDATE {enrollments} SET due_at = %s WHERE id IN ({inner}) "  # noqa: S608
        "AND status = %s AND due_at <= %s RETURNING id"
    )
    return sql, [until, *params, active, at]


def enrollments_claim(
    *, now: dt.datetime, limit: int, lease: dt.datetime | None = None
) -> list[int]:
    """Up to `limit` due enrollments (active, due_at <= now, journey active), oldest due
    first, now held until `lease` (claim_lease(now) by default). PostgreSQL skips rows
    another claim holds (FOR UPDATE SKIP LOCKED); SQLite runs one writer at a time and the
    outer UPDATE checks the rows again. The inner query walks journeys_enrol_due_idx."""
    if limit <= 0:
        return []
    sql, params = claim_statement(now=now, limit=limit, lease=lease or claim_lease(now))
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        return sorted(int(row[0]) for row in cursor.fetchall())


def enrollments_release(ids: Sequence[int], *, lease: dt.datetime, now: dt.datetime) -> int:
    """Rows of a call still holding its lease (a paused journey, the round cap) are due again
    at once, for the next claim."""
    if not ids:
        return 0
    return Enrollment.objects.filter(
        pk__in=list(ids), status=Enrollment.Status.ACTIVE, due_at=lease
    ).update(due_at=now)
