"""Goal exit: an enrollment whose contact has the journey's goal event (of the goal's type,
matching its filters, between entry and entry + within_days) leaves the journey at once as
converted, with the first such event and its value.

One conditional UPDATE per journey with that goal and chunk of contacts (or, for the sweep,
chunk of enrollments): `status = 'active'` in its WHERE, so a conversion never overwrites an
enrollment that already finished, and on PostgreSQL it waits for a row the engine holds
locked while it advances, then converts it if it is still active."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable

from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from core.batching import chunks, max_params_per_statement
from core.conditions import property_filters_q, where_load
from crm.models import Event
from journeys.models import Enrollment, Journey

logger = logging.getLogger(__name__)

SWEEP_CHUNK = 10_000


def goal_events(journey: Journey) -> QuerySet[Event]:
    """The goal events of the enrollment the query is nested in (OuterRef), first first."""
    events = Event.objects.filter(
        contact_id=OuterRef("contact_id"),
        type=journey.goal_event,
        occurred_at__gte=OuterRef("entered_at"),
    )
    if journey.goal_within_days:
        events = events.filter(
            occurred_at__lte=OuterRef("entered_at") + dt.timedelta(days=journey.goal_within_days)
        )
    if journey.goal_where:
        events = events.filter(
            property_filters_q("properties", where_load(journey.goal_where), absent_not_equal=False)
        )
    return events.order_by("occurred_at", "pk")


def _convert(journey: Journey, scope: Q, now: dt.datetime) -> int:
    events = goal_events(journey)
    return (
        Enrollment.objects.filter(scope, journey_id=journey.pk, status=Enrollment.Status.ACTIVE)
        .filter(Exists(events))
        .update(
            status=Enrollment.Status.CONVERTED,
            finished_at=now,
            due_at=None,
            awaiting_event="",
            exit_reason=f"goal {journey.goal_event}",
            conversion_event=Subquery(events.values("pk")[:1]),
            conversion_value=Subquery(events.values("value")[:1]),
        )
    )


def _sweep_scopes(journey: Journey) -> Iterable[Q]:
    """Consecutive ranges of the journey's active enrollments, by keyset: no transaction
    holds more than one range's rows."""
    low = 0
    while True:
        edge = list(
            Enrollment.objects.filter(
                journey_id=journey.pk, status=Enrollment.Status.ACTIVE, pk__gt=low
            )
            .order_by("pk")
            .values_list("pk", flat=True)[SWEEP_CHUNK - 1 : SWEEP_CHUNK]
        )
        if not edge:
            yield Q(pk__gt=low)
            return
        yield Q(pk__gt=low, pk__lte=edge[0])
        low = edge[0]


def goals_check(
    *,
    contact_ids: Iterable[int] | None = None,
    event_types: Iterable[str] | None = None,
    now: dt.datetime | None = None,
) -> int:
    """Convert the active enrollments that reached their journey's goal: of `contact_ids`
    in the journeys whose goal is one of `event_types` (after an ingest), or, with neither,
    of every journey with a goal (the sweep). Returns how many converted."""
    now = now or timezone.now()
    journeys = Journey.objects.exclude(goal_event="").order_by("pk")
    if event_types is not None:
        journeys = journeys.filter(goal_event__in=sorted(set(event_types)))
    ids = sorted(set(contact_ids)) if contact_ids is not None else None
    converted = 0
    for journey in journeys:
        scopes: Iterable[Q] = (
            _sweep_scopes(journey)
            if ids is None
            else (Q(contact_id__in=chunk) for chunk in chunks(ids, max_params_per_statement()))
        )
        for scope in scopes:
            converted += _convert(journey, scope, now)
    if converted:
        logger.info("journeys: %d enrollments reached their goal", converted)
    return converted


def goal_journeys_for(event_types: Iterable[str]) -> list[str]:
    """The event types among `event_types` that are some journey's goal: one query."""
    return sorted(
        set(
            Journey.objects.filter(goal_event__in=sorted(set(event_types))).values_list(
                "goal_event", flat=True
            )
        )
    )
