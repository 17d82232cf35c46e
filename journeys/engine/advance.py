"""Advancing claimed enrollments, in rounds. Each round reads the enrollments still holding
the call's lease (locked on PostgreSQL), groups them by (version, step), lets each group's
runner decide for all of its rows at once, and writes the moves (bulk UPDATEs) and the
ledger rows (one bulk INSERT, unique per enrollment, step and sequence) in the same
transaction: a killed worker leaves either nothing or the whole step. Steps that take no
time chain into the next round, until every enrollment waits or has finished."""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence

from django.db import DatabaseError, connection, transaction

from journeys.engine.apply import results_apply
from journeys.engine.claim import enrollments_release
from journeys.engine.runners import RUNNERS, Runner
from journeys.engine.types import AdvanceReport, Context, Result, Row, Step, VersionInfo
from journeys.flow import Flow
from journeys.models import Enrollment, Journey, JourneyVersion

logger = logging.getLogger(__name__)

MAX_ROUNDS = 50
Status = Enrollment.Status


def _rows(ids: Sequence[int], lease: dt.datetime) -> list[tuple[Row, bool]]:
    """(row, contact erased) for the ids still holding `lease` in an active journey."""
    query = Enrollment.objects.filter(
        pk__in=list(ids), status=Status.ACTIVE, due_at=lease, journey__status=Journey.Status.ACTIVE
    ).order_by("pk")
    if connection.features.has_select_for_update_of:
        query = query.select_for_update(of=("self",))
    values = query.values_list(
        "pk",
        "journey_id",
        "version_id",
        "contact_id",
        "step_id",
        "sequence",
        "entered_at",
        "step_started_at",
        "awaiting_event",
        "entry_properties",
        "contact__timezone",
        "contact__is_erased",
    )
    out = []
    for *fields, erased in values:
        pk, journey_id, version_id, contact_id, step_id, sequence, entered, started = fields[:8]
        awaiting, properties, zone = fields[8:]
        row = Row(
            pk=pk,
            journey_id=journey_id,
            version_id=version_id,
            contact_id=contact_id,
            step_id=step_id,
            sequence=sequence,
            entered_at=entered,
            step_started_at=started or entered,
            awaiting_event=awaiting,
            entry_properties=properties or {},
            contact_timezone=zone or "",
        )
        out.append((row, bool(erased)))
    return out


def _load_versions(ctx: Context, version_ids: Iterable[int]) -> None:
    missing = set(version_ids) - set(ctx.versions)
    if not missing:
        return
    for pk, number, slug, steps in JourneyVersion.objects.filter(pk__in=missing).values_list(
        "pk", "number", "journey__slug", "steps"
    ):
        ctx.versions[pk] = VersionInfo(number=number, journey_slug=slug, flow=Flow(steps))


def _decide(ctx: Context, rows: list[tuple[Row, bool]]) -> list[Result]:
    results: list[Result] = []
    groups: dict[tuple[int, str], list[Row]] = defaultdict(list)
    for row, erased in rows:
        if erased:
            results.append(Result(row, "finish", status=Status.EXITED, reason="contact erased"))
        else:
            groups[(row.version_id, row.step_id)].append(row)
    _load_versions(ctx, {version_id for version_id, _ in groups})
    for (version_id, step_id), members in groups.items():
        flow = ctx.versions[version_id].flow
        if step_id not in flow:
            error = "the step is not in the enrollment's version"
            results.extend(_failed(row, error) for row in members)
            continue
        step = flow.step(step_id)
        runner = RUNNERS.get(str(step.get("type")))
        if runner is None:
            results.extend(
                _failed(row, f"unknown step type {step.get('type')!r}") for row in members
            )
            continue
        results.extend(_run_group(ctx, runner, ctx.versions[version_id], step, members))
    return results


def _run_group(
    ctx: Context, runner: Runner, info: VersionInfo, step: Step, rows: list[Row]
) -> list[Result]:
    """One group's step in a savepoint: a step that raises fails its own enrollments (what
    it wrote is undone) instead of the round, so one bad step cannot stall the others. A
    database error is not the step's fault: it rolls the round back, for a later claim."""
    try:
        with transaction.atomic():
            return runner(ctx, info, step, rows)
    except DatabaseError:
        raise
    except Exception as exc:  # a step that cannot run, recorded on each of its enrollments
        logger.exception("journeys: step %s failed for %d enrollments", step.get("id"), len(rows))
        return [_failed(row, f"{exc.__class__.__name__}: {exc}") for row in rows]


def _failed(row: Row, error: str) -> Result:
    return Result(
        row,
        "finish",
        status=Status.FAILED,
        reason=f"{row.step_id}: {error}"[:200],
        ledger={"error": error},
        ledger_status="failed",
    )


def _round(ctx: Context, ids: Sequence[int], report: AdvanceReport) -> tuple[list[int], set[int]]:
    """One round in one transaction; returns the ids that stay in this call and the ids
    it read."""
    with transaction.atomic():
        rows = _rows(ids, ctx.lease)
        results = _decide(ctx, rows)
        results_apply(ctx, results, report)
    return sorted(
        r.row.pk
        for r in results
        if (r.kind == "move" and r.next_step is not None) or (r.kind == "hold" and r.keep)
    ), {row.pk for row, _ in rows}


def _make_calls(ctx: Context) -> None:
    """The network calls the round asked for, outside any transaction, each once: their
    ledger rows say "running" until the next round records what happened."""
    calls, ctx.calls = ctx.calls, {}
    for enrollment_id, call in calls.items():
        # Slow calls can outlast the lease: a row claimed again meanwhile was recorded as
        # "interrupted; not repeated" by the other worker, so it is not called from here.
        held = Enrollment.objects.filter(pk=enrollment_id, due_at=ctx.lease).exists()
        if not held:
            continue
        try:
            ctx.call_results[enrollment_id] = ("done", dict(call()))
        except Exception as exc:  # any failure of the call is the step's failure
            ctx.call_results[enrollment_id] = ("failed", f"{exc.__class__.__name__}: {exc}")


def enrollments_advance(
    ids: Sequence[int], *, lease: dt.datetime, now: dt.datetime
) -> AdvanceReport:
    """Run the due steps of the enrollments `ids` that still hold `lease` (their claim),
    chaining steps that take no time, at most MAX_ROUNDS rounds. Enrollments left holding
    the lease (the cap reached, a journey paused meanwhile) are due again at once."""
    ctx = Context(now=now, lease=lease)
    report = AdvanceReport()
    pending = sorted(set(ids))
    seen: set[int] = set()
    # Ids a round was given but did not read: another claim holds them, or their journey
    # was paused; the latter still hold this call's lease.
    unread: set[int] = set()
    for _ in range(MAX_ROUNDS):
        if not pending:
            break
        report.rounds += 1
        given = pending
        pending, read = _round(ctx, given, report)
        seen.update(read)
        unread.update(set(given) - read)
        _make_calls(ctx)
    report.enrollments = len(seen)
    # What still holds the lease (the round cap reached, a journey paused meanwhile) is due
    # again at once; a paused journey's rows then wait for it to resume. Rows held at a
    # step are left alone: one may be due, by chance, at the lease's very instant.
    released = enrollments_release(sorted(unread | set(pending)), lease=lease, now=now)
    if released:
        report.states["due again"] += released
    logger.info("journeys: %s", report.summary())
    return report
