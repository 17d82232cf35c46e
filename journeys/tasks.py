"""Celery tasks (routed to the "evaluation" queue): load, call the service, done."""

from __future__ import annotations

from core.tasks import shared_task


@shared_task
def journeys_advance_due() -> int:
    # placeholder: the engine part replaces it
    return 0


@shared_task
def journeys_goals_check(
    contact_ids: list[int] | None = None, event_types: list[str] | None = None
) -> int:
    """Convert the active enrollments whose goal event exists: of `contact_ids` for goals on
    `event_types` (on ingest), or of every contact for every goal (the scheduled sweep, for
    goals reached while no worker ran). Returns how many converted."""
    from journeys.goals import goals_check

    return goals_check(contact_ids=contact_ids, event_types=event_types)
