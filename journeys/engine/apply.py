"""Writing what the runners decided: a bounded number of statements per round whatever the
number of enrollments (one UPDATE per next step or per way out, one INSERT for the new
ledger rows, one UPDATE for the holds and one for the finished ledger rows: from column
arrays on PostgreSQL, from VALUES lists of 500 rows elsewhere). Django's bulk_create and
bulk_update spend milliseconds per row resolving expressions; these statements are plain
SQL with parameters."""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import F

from journeys.engine.types import AdvanceReport, Context, Result
from journeys.models import Enrollment, StepRun

Status = Enrollment.Status
BATCH = 500


def _stamp(value: dt.datetime | None) -> Any:
    return None if value is None else connection.ops.adapt_datetimefield_value(value)


# PostgreSQL: one array parameter per column, whatever the number of rows (the driver
# parses a statement's placeholders in Python: thousands of them cost more than the SQL).
_ARRAYS = {"int": "bigint[]", "text": "text[]", "json": "jsonb[]", "time": "timestamptz[]"}


def _unnest(
    columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> tuple[str, list[Any]]:
    arrays = ", ".join(f"%s::{_ARRAYS[kind]}" for _, kind in columns)
    return f"unnest({arrays})", [list(values) for values in zip(*rows, strict=True)]


def values_update(
    table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]
) -> None:
    """UPDATE `table` SET each column from the rows keyed by their first column (id): on
    PostgreSQL one statement from column arrays, elsewhere one per BATCH rows from a VALUES
    list. `columns` are (name, kind) with kind "int", "text", "json" or "time"."""
    if not rows:
        return
    quote = connection.ops.quote_name
    names = [name for name, _ in columns]
    sets = ", ".join(f"{quote(name)} = v.{quote(name)}" for name in names[1:])
    alias = ", ".join(quote(name) for name in names)
    if connection.vendor == "postgresql":
        source, params = _unnest(columns, rows)
        sql = (
            f"UPDATE {quote(table)} SET {sets} FROM {source} AS v({alias}) "  # noqa: S608
            f"WHERE {quote(table)}.id = v.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
        return
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        sql = (
            f"WITH v({alias}) AS (VALUES {', '.join([one] * len(chunk))}) "  # noqa: S608
            f"UPDATE {quote(table)} SET {sets} FROM v WHERE {quote(table)}.id = v.id"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for row in chunk for value in row])


def _insert(table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    quote = connection.ops.quote_name
    names = ", ".join(quote(name) for name, _ in columns)
    if connection.vendor == "postgresql":
        source, params = _unnest(columns, rows)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {quote(table)} ({names}) SELECT * FROM {source}", params)  # noqa: S608
        return
    one = "(" + ", ".join(["%s"] * len(columns)) + ")"
    for start in range(0, len(rows), BATCH):
        chunk = rows[start : start + BATCH]
        sql = f"INSERT INTO {quote(table)} ({names}) VALUES {', '.join([one] * len(chunk))}"  # noqa: S608
        with connection.cursor() as cursor:
            cursor.execute(sql, [value for row in chunk for value in row])


LEDGER_COLUMNS = (
    ("enrollment_id", "int"),
    ("step_id", "text"),
    ("sequence", "int"),
    ("status", "text"),
    ("outcome", "json"),
    ("started_at", "time"),
    ("finished_at", "time"),
)
LEDGER_FINISH = (("id", "int"), ("status", "text"), ("outcome", "json"), ("finished_at", "time"))


def _ledger(ctx: Context, results: list[Result], report: AdvanceReport) -> None:
    new: list[tuple[Any, ...]] = []
    finished: list[tuple[Any, ...]] = []
    now = _stamp(ctx.now)
    for result in results:
        if result.ledger is None:
            continue
        row = result.row
        done = result.ledger_status != StepRun.Status.RUNNING
        finished_at = now if done else None
        outcome = json.dumps(result.ledger)
        if done:
            report.steps += 1
        if result.ledger_pk is not None:
            finished.append((result.ledger_pk, result.ledger_status, outcome, finished_at))
        else:
            new.append(
                (row.pk, row.step_id, row.sequence, result.ledger_status, outcome, now, finished_at)
            )
    # No ON CONFLICT: a second run of a step is a bug, and the unique constraint turning it
    # into an error rolls the whole round back.
    _insert(StepRun._meta.db_table, LEDGER_COLUMNS, new)
    values_update(StepRun._meta.db_table, LEDGER_FINISH, finished)


def _moves(ctx: Context, results: list[Result], report: AdvanceReport) -> None:
    by_next: dict[str | None, list[int]] = defaultdict(list)
    for result in results:
        if result.kind == "move":
            by_next[result.next_step].append(result.row.pk)
    for next_step, ids in by_next.items():
        rows = Enrollment.objects.filter(pk__in=ids)
        if next_step is None:
            rows.update(
                status=Status.COMPLETED,
                finished_at=ctx.now,
                due_at=None,
                exit_reason="completed",
                awaiting_event="",
            )
            report.states[Status.COMPLETED] += len(ids)
        else:
            # The next step runs in this call: the enrollment keeps the lease meanwhile.
            rows.update(
                step_id=next_step,
                sequence=F("sequence") + 1,
                due_at=ctx.lease,
                step_started_at=ctx.now,
                awaiting_event="",
            )


def _finishes(ctx: Context, results: list[Result], report: AdvanceReport) -> None:
    by_way: dict[tuple[str, str], list[int]] = defaultdict(list)
    for result in results:
        if result.kind == "finish":
            by_way[(result.status, result.reason)].append(result.row.pk)
    for (status, reason), ids in by_way.items():
        Enrollment.objects.filter(pk__in=ids).update(
            status=status, exit_reason=reason, finished_at=ctx.now, due_at=None, awaiting_event=""
        )
        report.states[status] += len(ids)


def _holds(ctx: Context, results: list[Result], report: AdvanceReport) -> None:
    held: list[tuple[Any, ...]] = []
    for result in results:
        if result.kind != "hold":
            continue
        awaiting = result.awaiting if result.awaiting is not None else result.row.awaiting_event
        held.append((result.row.pk, _stamp(result.due_at), awaiting))
        if not result.keep:
            report.states[result.state] += 1
    columns = (("id", "int"), ("due_at", "time"), ("awaiting_event", "text"))
    values_update(Enrollment._meta.db_table, columns, held)


def results_apply(ctx: Context, results: list[Result], report: AdvanceReport) -> None:
    _ledger(ctx, results, report)
    _moves(ctx, results, report)
    _finishes(ctx, results, report)
    _holds(ctx, results, report)
