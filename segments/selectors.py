"""Reads over segments: references and cycles between them, refresh order, warnings,
members and previews."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db.models import Count, QuerySet

from crm.models import Contact
from segments.compiler import definition_compile, segment_queryset
from segments.compiler.tree import (
    DefinitionError,
    definition_parse,
    depends_on_clock,
    segment_references,
)
from segments.compiler.types import Node
from segments.models.definitions import Segment, SegmentMembership, SegmentSizeSnapshot


def _references_of(definition: Any) -> set[str]:
    try:
        return segment_references(definition_parse(definition))
    except DefinitionError:
        return set()  # an invalid stored definition is reported where it is edited


def segment_graph(*, overrides: dict[str, Any] | None = None) -> dict[str, set[str]]:
    """slug -> slugs it references, over every stored segment; `overrides` replaces the
    stored definition of some slugs (a definition being edited)."""
    graph = {
        slug: _references_of(definition)
        for slug, definition in Segment.objects.values_list("slug", "definition")
    }
    for slug, definition in (overrides or {}).items():
        graph[slug] = _references_of(definition)
    return graph


def _find_cycle(graph: dict[str, set[str]], start: str) -> list[str] | None:
    """A path start -> ... -> start, if there is one."""
    path: list[str] = []
    on_path: set[str] = set()
    done: set[str] = set()

    def visit(slug: str) -> list[str] | None:
        if slug in on_path:
            return [*path[path.index(slug) :], slug]
        if slug in done:
            return None
        path.append(slug)
        on_path.add(slug)
        for target in sorted(graph.get(slug, ())):
            found = visit(target)
            if found:
                return found
        path.pop()
        on_path.discard(slug)
        done.add(slug)
        return None

    return visit(start)


def segment_reference_problems(*, segment: Segment, node: Node) -> list[str]:
    """Messages for member-of-segment conditions naming unknown segments, the segment itself
    or a cycle, and for a slug change that would break segments referring to the old slug."""
    problems: list[str] = []
    refs = segment_references(node)
    known = set(Segment.objects.filter(slug__in=refs).values_list("slug", flat=True))
    for slug in sorted(refs - known - {segment.slug}):
        problems.append(f"member-of-segment condition names {slug!r}, which is not a segment")
    if segment.slug in refs:
        problems.append(f"segment {segment.slug!r} cannot be defined by membership of itself")
        return problems
    if segment.pk is not None:
        old_slug = Segment.objects.filter(pk=segment.pk).values_list("slug", flat=True).first()
        if old_slug and old_slug != segment.slug:
            users = sorted(
                slug
                for slug, targets in segment_graph().items()
                if old_slug in targets and slug != old_slug
            )
            if users:
                problems.append(
                    f"slug {old_slug!r} is used by segment(s) {', '.join(users)}: change them first"
                )
    graph = segment_graph()
    if segment.pk is not None:
        stored = Segment.objects.filter(pk=segment.pk).values_list("slug", flat=True).first()
        graph.pop(stored or "", None)
    graph[segment.slug] = refs
    cycle = _find_cycle(graph, segment.slug)
    if cycle:
        problems.append("segment memberships form a cycle: " + " → ".join(cycle))
    return problems


def segments_refresh_order(
    segments: Iterable[Segment], *, with_dependents: bool = False
) -> list[Segment]:
    """The given segments (and, with_dependents, every active segment that refers to them
    directly or not), ordered so that a segment comes after those it refers to."""
    chosen = {segment.slug: segment for segment in segments}
    all_active = {segment.slug: segment for segment in Segment.objects.filter(is_active=True)}
    graph = {slug: _references_of(segment.definition) for slug, segment in all_active.items()}
    graph.update({slug: _references_of(segment.definition) for slug, segment in chosen.items()})
    if with_dependents:
        changed = True
        while changed:
            changed = False
            for slug, targets in graph.items():
                if slug not in chosen and targets & set(chosen) and slug in all_active:
                    chosen[slug] = all_active[slug]
                    changed = True
    ordered: list[Segment] = []
    placed: set[str] = set()

    def place(slug: str, seen: frozenset[str]) -> None:
        if slug in placed or slug in seen:
            return
        for target in sorted(graph.get(slug, ())):
            if target in chosen:
                place(target, seen | {slug})
        placed.add(slug)
        ordered.append(chosen[slug])

    for slug in sorted(chosen):
        place(slug, frozenset())
    return ordered


def segments_depending_on_clock() -> list[Segment]:
    """Active segments whose membership can change with time alone, directly (a behaviour
    window, days since) or through a segment they refer to."""
    active = list(Segment.objects.filter(is_active=True))
    by_slug = {segment.slug: segment for segment in active}
    clock: set[str] = set()
    graph: dict[str, set[str]] = {}
    for segment in active:
        try:
            node = definition_parse(segment.definition)
        except DefinitionError:
            continue
        graph[segment.slug] = segment_references(node)
        if depends_on_clock(node):
            clock.add(segment.slug)
    changed = True
    while changed:
        changed = False
        for slug, targets in graph.items():
            if slug not in clock and targets & clock:
                clock.add(slug)
                changed = True
    return segments_refresh_order([by_slug[slug] for slug in clock])


def segments_using(*, condition_types: set[str]) -> list[Segment]:
    """Active segments with a condition of one of these types (e.g. {"rfm"} after RFM scores
    were recomputed), with the segments that refer to them, in refresh order."""
    from segments.compiler.tree import condition_types as types_of

    found = []
    for segment in Segment.objects.filter(is_active=True):
        try:
            if types_of(definition_parse(segment.definition)) & condition_types:
                found.append(segment)
        except DefinitionError:
            continue
    return segments_refresh_order(found, with_dependents=True)


def segment_current_members(*, segment: Segment) -> QuerySet[SegmentMembership]:
    return SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True)


@dataclass(frozen=True)
class SegmentWarning:
    kind: Literal["too_small", "overlap"]
    message: str
    other_id: int | None = None


def segment_overlaps(
    *, segment: Segment, others: Iterable[Segment] | None = None
) -> dict[int, float]:
    """{other segment id: share of this segment's current members also current members of
    the other}, in one grouped query over current memberships."""
    if segment.size == 0 and not segment_current_members(segment=segment).exists():
        return {}
    mine = segment_current_members(segment=segment).values("contact_id")
    candidates = SegmentMembership.objects.filter(
        exited_at__isnull=True, contact_id__in=mine
    ).exclude(segment_id=segment.pk)
    if others is not None:
        candidates = candidates.filter(segment_id__in=[other.pk for other in others])
    total = segment_current_members(segment=segment).count()
    rows = candidates.values("segment_id").annotate(shared=Count("id")).order_by()
    return {row["segment_id"]: row["shared"] / total for row in rows if total}


def segment_warnings(*, segment: Segment) -> list[SegmentWarning]:
    """Too small to act on (below its minimum size), and overlaps above
    SEGMENT_OVERLAP_WARNING_PERCENT with other active segments."""
    warnings: list[SegmentWarning] = []
    if segment.size < segment.min_size:
        warnings.append(
            SegmentWarning(
                "too_small",
                f"too small to act on: {segment.size} members, "
                f"below the minimum of {segment.min_size}",
            )
        )
    threshold = getattr(settings, "SEGMENT_OVERLAP_WARNING_PERCENT", 90) / 100
    overlaps = segment_overlaps(segment=segment)
    if overlaps:
        names = dict(
            Segment.objects.filter(pk__in=overlaps, is_active=True).values_list("pk", "name")
        )
        for other_id, share in sorted(overlaps.items(), key=lambda item: -item[1]):
            if share > threshold and other_id in names:
                warnings.append(
                    SegmentWarning(
                        "overlap",
                        f"{share:.0%} of its members are also in {names[other_id]!r}",
                        other_id,
                    )
                )
    return warnings


@dataclass(frozen=True)
class SegmentPreview:
    size: int
    sample: list[Contact]


def segment_preview(
    *, definition: Any, now: dt.datetime | None = None, sample_size: int = 20
) -> SegmentPreview:
    """Who matches a (possibly unsaved) definition right now: the count and the first
    `sample_size` contacts. Raises DefinitionError for an invalid definition."""
    queryset = Contact.objects.filter(is_erased=False).filter(
        definition_compile(definition, now=now)
    )
    return SegmentPreview(size=queryset.count(), sample=list(queryset.order_by("id")[:sample_size]))


def segment_size_history(*, segment: Segment, days: int = 90) -> list[SegmentSizeSnapshot]:
    return list(SegmentSizeSnapshot.objects.filter(segment=segment).order_by("-date")[:days][::-1])


__all__ = [
    "SegmentPreview",
    "SegmentWarning",
    "segment_current_members",
    "segment_graph",
    "segment_overlaps",
    "segment_preview",
    "segment_queryset",
    "segment_reference_problems",
    "segment_size_history",
    "segment_warnings",
    "segments_depending_on_clock",
    "segments_refresh_order",
    "segments_using",
]
