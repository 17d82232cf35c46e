"""Scheduled sweeps: rules whose answer moves with the clock, checked for the contacts that
can match now, pre-filtered in SQL and read in keyset pages."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.db.models import Q
from django.utils import timezone

from core.keyset import keyset_pages
from crm.models import Contact
from triggers.conditions import conditions as condition_registry
from triggers.models import TriggerFiring, TriggerRule
from triggers.services.evaluation import EvaluationResult, evaluation_batch_size, matches_find
from triggers.services.firings import firings_record
from triggers.services.rules import ruleset_current


def rule_candidates(*, snapshot: Mapping[str, Any], rule_id: int | None, now: dt.datetime) -> Q:
    """A Contact filter that every contact who can fire the rule now satisfies."""
    filters: list[Q | None] = []
    for entry in snapshot["conditions"]:
        handler = condition_registry.get(str(entry["id"]))
        options = {key: value for key, value in entry.items() if key != "id"}
        filters.append(handler.candidates(options, now=now) if handler else None)
    narrowing = Q()
    if snapshot.get("match_mode") == TriggerRule.MatchMode.ANY:
        if filters and all(f is not None for f in filters):
            for item in filters:
                narrowing |= item  # type: ignore[operator]
    else:
        for item in filters:
            if item is not None:
                narrowing &= item
    narrowing &= Q(is_erased=False)
    if snapshot.get("audience_segment"):
        from segments.models import SegmentMembership

        narrowing &= Q(
            id__in=SegmentMembership.objects.filter(
                segment__slug=snapshot["audience_segment"], exited_at__isnull=True
            ).values("contact_id")
        )
    if rule_id is not None:
        fired = TriggerFiring.objects.filter(rule_id=rule_id)
        if snapshot.get("reentry") == TriggerRule.Reentry.ONCE_EVER:
            narrowing &= ~Q(id__in=fired.values("contact_id"))
        elif snapshot.get("reentry") == TriggerRule.Reentry.ONCE_PER_DAYS:
            recent = fired.filter(
                fired_at__gt=now - dt.timedelta(days=snapshot.get("reentry_days") or 1)
            )
            narrowing &= ~Q(id__in=recent.values("contact_id"))
    return narrowing


def _active(snapshot: Mapping[str, Any], now: dt.datetime) -> bool:
    start, end = snapshot.get("active_from"), snapshot.get("active_until")
    if start and dt.datetime.fromisoformat(start) > now:
        return False
    return not (end and dt.datetime.fromisoformat(end) <= now)


def candidate_batches(*, narrowing: Q, size: int) -> Iterable[list[int]]:
    """Keyset pagination by id over the contacts that pass the filter."""
    return keyset_pages(
        Contact.objects.filter(narrowing).values_list("id", flat=True), size=size, field="id"
    )


SweepProgress = Callable[[str, int, int], None]  # rule slug, contacts checked, fired


def triggers_sweep(
    *,
    now: dt.datetime | None = None,
    slugs: set[str] | None = None,
    progress: SweepProgress | None = None,
) -> dict[str, EvaluationResult]:
    """For rules whose answer moves with the clock (dormancy, windows, local time...):
    check the contacts that can match now, pre-filtered in SQL."""
    now = now or timezone.now()
    compiled, rules = ruleset_current(force=True)
    size = evaluation_batch_size()
    results: dict[str, EvaluationResult] = {}
    for slug in compiled.rule_slugs:
        info = rules[slug]
        if slugs is not None and slug not in slugs:
            continue
        clock = any(
            getattr(condition_registry.get(str(e["id"])), "time_dependent", False)
            for e in info.snapshot["conditions"]
        )
        if (slugs is None and not clock) or not _active(info.snapshot, now):
            continue
        result = results.setdefault(slug, EvaluationResult())
        narrowing = rule_candidates(snapshot=info.snapshot, rule_id=info.id, now=now)
        for batch in candidate_batches(narrowing=narrowing, size=size):
            evaluated, pairs = matches_find(
                contact_ids=batch, now=now, only_rules={slug}, compiled=compiled, rules=rules
            )
            firing_ids = firings_record(pairs=pairs, now=now, source="sweep")
            result.evaluated += evaluated
            result.matched += len(pairs)
            result.fired += len(firing_ids)
            result.firing_ids.extend(firing_ids)
            if progress:
                progress(slug, result.evaluated, result.fired)
    return results
