"""Celery tasks (routed to the "evaluation" queue): load, call the service, done."""

from __future__ import annotations

from core.tasks import shared_task
from triggers.models import TriggerFiring
from triggers.services import sweep
from triggers.services.evaluation import pending_evaluate
from triggers.services.firings import firings_run


class TriggerActionsFailed(RuntimeError):
    """Raised after every firing of the batch ran, so the failure shows in the worker's log
    too; each error is already recorded on its firing."""


@shared_task
def trigger_pending_evaluate() -> int:
    """Evaluate the contacts queued by new events and segment changes."""
    return pending_evaluate().fired


@shared_task
def trigger_firings_run(firing_ids: list[int]) -> int:
    firings = firings_run(firing_ids=firing_ids)
    failed = [f for f in firings if f.status == TriggerFiring.Status.FAILED]
    if failed:
        raise TriggerActionsFailed("; ".join(f"firing {f.pk}: {f.error}" for f in failed))
    return len(firings)


@shared_task
def triggers_sweep() -> int:
    """Scheduled: rules whose conditions move with the clock (dormancy, windows); also
    drains the evaluation queue in case a queued contact lost its race with a drain."""
    fired = sum(result.fired for result in sweep.triggers_sweep().values())
    return fired + pending_evaluate().fired
