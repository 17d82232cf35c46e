"""Writing what the runners decided: a bounded number of statements per round whatever the
number of enrollments (one UPDATE per next step or per way out, one CASE UPDATE for the
holds, one INSERT for the new ledger rows, one CASE UPDATE for the finished ones)."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from django.db.models import F

from journeys.engine.types import AdvanceReport, Context, Result
from journeys.models import Enrollment, StepRun

Status = Enrollment.Status
BATCH = 500


def _ledger(ctx: Context, results: list[Result], report: AdvanceReport) -> None:
    new: list[StepRun] = []
    finished: list[StepRun] = []
    for result in results:
        if result.ledger is None:
            continue
        row = result.row
        done = result.ledger_status != StepRun.Status.RUNNING
        finished_at = ctx.now if done else None
        if done:
            report.steps += 1
        if result.ledger_pk is not None:
            finished.append(
                StepRun(
                    pk=result.ledger_pk,
                    status=result.ledger_status,
                    outcome=result.ledger,
                    finished_at=finished_at,
                )
            )
            continue
        new.append(
            StepRun(
                enrollment_id=row.pk,
                step_id=row.step_id,
                sequence=row.sequence,
                status=result.ledger_status,
                outcome=result.ledger,
                started_at=ctx.now,
                finished_at=finished_at,
            )
        )
    # No ignore_conflicts: a second run of a step is a bug, and the unique constraint
    # turning it into an error rolls the whole round back.
    StepRun.objects.bulk_create(new, batch_size=BATCH)
    StepRun.objects.bulk_update(finished, ["status", "outcome", "finished_at"], batch_size=BATCH)


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
    # One UPDATE per distinct (due, awaiting) pair: holds of a round mostly share one due
    # time, and bulk_update's per-row CASE costs far more to build than to run.
    held: dict[tuple[dt.datetime | None, str], list[int]] = defaultdict(list)
    for result in results:
        if result.kind != "hold":
            continue
        awaiting = result.awaiting if result.awaiting is not None else result.row.awaiting_event
        held[(result.due_at, awaiting)].append(result.row.pk)
        if not result.keep:
            report.states[result.state] += 1
    for (due_at, awaiting), ids in held.items():
        Enrollment.objects.filter(pk__in=ids).update(due_at=due_at, awaiting_event=awaiting)


def results_apply(ctx: Context, results: list[Result], report: AdvanceReport) -> None:
    _ledger(ctx, results, report)
    _moves(ctx, results, report)
    _finishes(ctx, results, report)
    _holds(ctx, results, report)
