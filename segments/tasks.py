"""Celery tasks: load, call the service, done."""

from __future__ import annotations

from core.tasks import shared_task
from segments import services
from segments.models.definitions import Segment


@shared_task
def segments_refresh_pending() -> int:
    """Incremental refresh of the contacts queued by new events."""
    return services.segments_refresh_pending()


@shared_task
def segments_refresh_clock_dependent() -> int:
    """Scheduled: segments whose answer moves with the clock; also drains the event queue in
    case a queued contact lost its race with a finishing drain task."""
    refreshed = len(services.segments_refresh_clock_dependent())
    services.segments_refresh_pending()
    return refreshed


@shared_task
def segments_refresh_all() -> int:
    """Scheduled daily: every active segment in full (attribute and consent changes are not
    events), which also records each segment's daily size snapshot."""
    return len(services.segments_refresh(collect_ids=False))


@shared_task
def segments_refresh_by_id(segment_ids: list[int]) -> int:
    """Admin's "refresh now" on chosen segments."""
    segments = list(Segment.objects.filter(pk__in=segment_ids))
    return len(services.segments_refresh(segments=segments, collect_ids=False))


# Celery's autodiscovery imports only `<app>.tasks`; the analytics tasks live in their own
# module (segments/analytics/tasks.py) and are registered by this import.
from segments.analytics import tasks as _analytics_tasks  # noqa: E402, F401
