"""Celery tasks (routed to the "evaluation" queue): load, call the service, done."""

from __future__ import annotations

from core.tasks import shared_task


@shared_task
def journeys_advance_due() -> int:
    # placeholder: the engine part replaces it
    return 0
