"""Segments whose conditions read analytics change when the analytics are recomputed, not
when events arrive; this refreshes exactly those after a run."""

from __future__ import annotations

import logging

from segments.compiler.tree import DefinitionError, condition_types, definition_parse
from segments.models.definitions import Segment
from segments.services import ProgressCallback, RefreshResult, segments_refresh

logger = logging.getLogger(__name__)

ANALYTICS_CONDITION_TYPES = frozenset({"rfm", "lifecycle", "cluster", "prediction"})


def segments_using(*, types: frozenset[str] | set[str]) -> list[Segment]:
    """Active segments with at least one condition of the given types."""
    chosen: list[Segment] = []
    for segment in Segment.objects.filter(is_active=True).order_by("id").iterator():
        try:
            used = condition_types(definition_parse(segment.definition))
        except DefinitionError:
            logger.warning("segment %s has an invalid definition; not refreshed", segment.slug)
            continue
        if used & types:
            chosen.append(segment)
    return chosen


def analytics_segments_refresh(
    *,
    types: frozenset[str] | set[str] = ANALYTICS_CONDITION_TYPES,
    progress: ProgressCallback | None = None,
) -> dict[str, RefreshResult]:
    segments = segments_using(types=types)
    if not segments:
        return {}
    return segments_refresh(segments=segments, progress=progress, collect_ids=False)
