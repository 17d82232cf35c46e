"""The step runners: one function per step type, deciding for a whole group of enrollments
at the same step of the same version at once (a constant number of queries per group). A
runner only decides; journeys/engine/apply.py writes."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from django.db import transaction

from journeys.decisions import HOLDOUT, Entrant, branch_decide, split_decide
from journeys.engine.ledger import ledger_runs
from journeys.engine.sends import run_send, step_occurrence
from journeys.engine.types import Context, Result, Row, Step, VersionInfo
from journeys.engine.waits import run_wait, run_wait_for
from journeys.models import Enrollment, StepRun
from triggers.actions import actions

if TYPE_CHECKING:
    from triggers.models import TriggerFiring

Runner = Callable[[Context, VersionInfo, Step, list[Row]], list[Result]]
Status = Enrollment.Status


def failed(row: Row, error: str, *, ledger_pk: int | None = None, **outcome: Any) -> Result:
    return Result(
        row,
        "finish",
        status=Status.FAILED,
        reason=f"{row.step_id}: {error}"[:200],
        ledger={**outcome, "error": error},
        ledger_status=StepRun.Status.FAILED,
        ledger_pk=ledger_pk,
    )


def run_branch(ctx: Context, info: VersionInfo, step: Step, rows: list[Row]) -> list[Result]:
    entrants = [Entrant(row.pk, row.contact_id, row.entered_at) for row in rows]
    decisions = branch_decide(step, entrants, now=ctx.now)
    out = []
    for row in rows:
        decision = decisions.get(row.pk)
        if decision is None:  # no snapshot: the contact is gone or erased
            out.append(Result(row, "finish", status=Status.EXITED, reason="contact erased"))
            continue
        nxt = info.flow.enter(row.step_id, decision.key)
        out.append(Result(row, "move", next_step=nxt, ledger=decision.as_outcome()))
    return out


def run_split(ctx: Context, info: VersionInfo, step: Step, rows: list[Row]) -> list[Result]:
    out = []
    for row in rows:
        arm = split_decide(step, journey_id=row.journey_id, contact_id=row.contact_id)
        flow = info.flow
        nxt = flow.after(row.step_id) if arm == HOLDOUT else flow.enter(row.step_id, arm)
        out.append(Result(row, "move", next_step=nxt, ledger={"arm": arm}))
    return out


def run_exit(ctx: Context, info: VersionInfo, step: Step, rows: list[Row]) -> list[Result]:
    reason = f"exit step {step['id']}"
    return [
        Result(row, "finish", status=Status.EXITED, reason=reason, ledger={"exit": True})
        for row in rows
    ]


@dataclass(frozen=True)
class _Rule:
    slug: str


@dataclass(frozen=True)
class JourneyFiring:
    """What an action reads of the trigger firing that runs it, for a journey step: no
    TriggerFiring row exists, so `pk` is None (a list membership records no firing, a
    webhook says "firing_id": null) and the rule is "journey:<slug>" at its version."""

    rule: _Rule
    rule_version: int
    occurrence_key: str
    fired_at: dt.datetime
    pk: None = None


def _firing(ctx: Context, info: VersionInfo, row: Row) -> TriggerFiring:
    firing = JourneyFiring(
        rule=_Rule(f"journey:{info.journey_slug}"),
        rule_version=info.number,
        occurrence_key=step_occurrence(row),
        fired_at=ctx.now,
    )
    return cast("TriggerFiring", firing)


def _after_call(
    ctx: Context, info: VersionInfo, row: Row, action_id: str, run: tuple[int, str, Any]
) -> Result:
    """A network action's ledger row found again: record what the call did, or, when this
    call did not make it (the worker that did died), that it may have happened."""
    pk, status, _ = run
    nxt = info.flow.after(row.step_id)
    if status != StepRun.Status.RUNNING:  # recorded already
        return Result(row, "move", next_step=nxt)
    called = ctx.call_results.pop(row.pk, None)
    if called is None:
        outcome = {"action": action_id, "error": "interrupted; not repeated"}
        return Result(
            row, "move", next_step=nxt, ledger=outcome, ledger_status="failed", ledger_pk=pk
        )
    state, value = called
    if state == "failed":
        return failed(row, str(value), ledger_pk=pk, action=action_id)
    return Result(row, "move", next_step=nxt, ledger={"action": action_id, **value}, ledger_pk=pk)


def run_action(ctx: Context, info: VersionInfo, step: Step, rows: list[Row]) -> list[Result]:
    action_id = str(step.get("action"))
    handler = actions.get(action_id)
    if handler is None:
        return [failed(row, f"unknown action {action_id!r}") for row in rows]
    options = handler.options({k: v for k, v in step.items() if k not in ("id", "type")})
    runs = ledger_runs(rows, str(step["id"])) if not handler.database_only else {}
    out = []
    for row in rows:
        if row.pk in runs:
            out.append(_after_call(ctx, info, row, action_id, runs[row.pk]))
            continue
        firing = _firing(ctx, info, row)
        if not handler.database_only:
            # A network call never holds a transaction open: the "running" row commits
            # first, the call is made after, the next round records what it did.
            call = functools.partial(handler.run, options, firing=firing, contact_id=row.contact_id)
            ctx.calls[row.pk] = call
            ledger = {"action": action_id}
            out.append(
                Result(
                    row, "hold", due_at=ctx.lease, ledger=ledger, ledger_status="running", keep=True
                )
            )
            continue
        try:
            with transaction.atomic():
                result = handler.run(options, firing=firing, contact_id=row.contact_id)
        except Exception as exc:  # the step's failure, recorded on the enrollment
            out.append(failed(row, str(exc) or exc.__class__.__name__, action=action_id))
            continue
        nxt = info.flow.after(row.step_id)
        out.append(Result(row, "move", next_step=nxt, ledger={"action": action_id, **result}))
    return out


RUNNERS: dict[str, Runner] = {
    "wait": run_wait,
    "wait_for": run_wait_for,
    "branch": run_branch,
    "split": run_split,
    "send": run_send,
    "action": run_action,
    "exit": run_exit,
}
