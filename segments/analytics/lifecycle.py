"""Lifecycle stages: new, active, dormant, churned, reactivated.

The stage is a SQL CASE over each contact's history: its events (the first one, and any
comeback: an event after at least D days without one), Contact.last_activity_at (kept by
crm on event ingest, so editing a contact is not activity), created_at (only to tell who is
new) and the stage stored last time. Only contacts whose stage changes are read, in keyset
batches by id, and written with one UPDATE per target stage and one bulk insert.

Rules, first match wins (N, D, C = LIFECYCLE_NEW_DAYS, _DORMANT_DAYS, _CHURNED_DAYS):
1. new: created in the last N days, and first activity (if any) in the last N days, so an
   imported history is not new;
2. reactivated: activity in the last D days, and a comeback in the last N days, or the
   stored stage was dormant or churned, or it is reactivated since less than N days with no
   earlier comeback in the history (dormant without ever being active); so a comeback stays
   reactivated for N days, then becomes active;
3. active: activity in the last D days;
4. dormant: last activity D to C days ago, or never active and created less than C days ago;
5. churned: everything else (no activity for C days or more).
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import (
    Case,
    CharField,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Value,
    When,
)
from django.utils import timezone

from core.keyset import keyset_pages
from crm.models import Contact, Event
from segments.models.analytics import ContactLifecycle, LifecycleChange, LifecycleStage

BATCH_SIZE = 5_000
ProgressCallback = Callable[[int], None]  # contacts changed so far

S = LifecycleStage


@dataclass(frozen=True)
class LifecycleThresholds:
    new_days: int
    dormant_days: int
    churned_days: int

    @classmethod
    def from_settings(cls) -> LifecycleThresholds:
        thresholds = cls(
            new_days=int(settings.LIFECYCLE_NEW_DAYS),
            dormant_days=int(settings.LIFECYCLE_DORMANT_DAYS),
            churned_days=int(settings.LIFECYCLE_CHURNED_DAYS),
        )
        if not 0 < thresholds.dormant_days < thresholds.churned_days:
            raise ImproperlyConfigured(
                "Need 0 < LIFECYCLE_DORMANT_DAYS < LIFECYCLE_CHURNED_DAYS, got "
                f"{thresholds.dormant_days} and {thresholds.churned_days}."
            )
        if thresholds.new_days < 0:
            raise ImproperlyConfigured(
                f"LIFECYCLE_NEW_DAYS must not be negative, got {thresholds.new_days}."
            )
        return thresholds


@dataclass
class LifecycleResult:
    checked_at: dt.datetime
    changed: int = 0
    transitions: dict[tuple[str, str], int] = field(default_factory=dict)  # (from, to) -> n
    by_stage: dict[str, int] = field(default_factory=dict)


def _comebacks(*, gap_days: int) -> QuerySet[Event]:
    """Events of the outer contact that came after at least `gap_days` without activity: the
    contact had an earlier event, but none in the `gap_days` before this one. (The same as
    LAG(occurred_at) <= occurred_at - gap over the contact's events, written as two index
    probes on (contact, occurred_at) per candidate event rather than a window over the
    whole event table.)"""
    gap = dt.timedelta(days=gap_days)
    events = Event.objects.filter(contact_id=OuterRef(OuterRef("pk")))
    return (
        Event.objects.filter(contact_id=OuterRef("pk"))
        .annotate(gap_start=ExpressionWrapper(F("occurred_at") - gap, DateTimeField()))
        .filter(Exists(events.filter(occurred_at__lt=OuterRef("gap_start"))))
        .filter(
            ~Exists(
                events.filter(
                    occurred_at__gte=OuterRef("gap_start"), occurred_at__lt=OuterRef("occurred_at")
                )
            )
        )
    )


def lifecycle_stage_expression(*, now: dt.datetime, thresholds: LifecycleThresholds) -> Case:
    """The stage a contact should be in now, as a SQL CASE over Contact rows (rules in the
    module docstring)."""
    new_since = now - dt.timedelta(days=thresholds.new_days)
    active_since = now - dt.timedelta(days=thresholds.dormant_days)
    churn_before = now - dt.timedelta(days=thresholds.churned_days)
    active = Q(last_activity_at__gte=active_since)
    # First activity (not the latest) decides who is new: an imported history is not new.
    no_activity_before_new_window = ~Exists(
        Event.objects.filter(contact_id=OuterRef("pk"), occurred_at__lt=new_since)
    )
    comebacks = _comebacks(gap_days=thresholds.dormant_days)
    came_back_recently = Exists(comebacks.filter(occurred_at__gte=new_since))
    # Seen reactivated by an earlier run although the history shows no gap (e.g. a contact
    # dormant without ever being active): reactivated for N days from that run.
    seen_reactivated = Q(lifecycle__stage=S.REACTIVATED, lifecycle__since__gte=new_since) & ~Exists(
        comebacks.filter(occurred_at__lt=new_since)
    )
    return Case(
        When(
            Q(created_at__gte=new_since) & no_activity_before_new_window,
            then=Value(S.NEW.value),
        ),
        When(
            active
            & (
                Q(lifecycle__stage__in=[S.DORMANT, S.CHURNED])
                | came_back_recently
                | seen_reactivated
            ),
            then=Value(S.REACTIVATED.value),
        ),
        When(active, then=Value(S.ACTIVE.value)),
        When(last_activity_at__gte=churn_before, then=Value(S.DORMANT.value)),
        When(
            Q(last_activity_at__isnull=True, created_at__gte=churn_before),
            then=Value(S.DORMANT.value),
        ),
        default=Value(S.CHURNED.value),
        output_field=CharField(),
    )


def lifecycle_refresh(
    *,
    now: dt.datetime | None = None,
    thresholds: LifecycleThresholds | None = None,
    progress: ProgressCallback | None = None,
) -> LifecycleResult:
    """Moves every contact whose stage changed to its new stage, records each change in
    LifecycleChange, and drops the rows of erased contacts."""
    now = now or timezone.now()
    thresholds = thresholds or LifecycleThresholds.from_settings()
    result = LifecycleResult(checked_at=now)
    # Only contacts whose stage differs from the stored one (or who have none) are read.
    pending = (
        Contact.objects.filter(is_erased=False)
        .annotate(stage_now=lifecycle_stage_expression(now=now, thresholds=thresholds))
        .filter(Q(lifecycle__isnull=True) | ~Q(lifecycle__stage=F("stage_now")))
        .values_list("id", "lifecycle__stage", "stage_now")
    )
    for batch in keyset_pages(pending, size=BATCH_SIZE, field="id"):
        missing: list[ContactLifecycle] = []
        moves: dict[str, list[int]] = defaultdict(list)
        changes: list[LifecycleChange] = []
        for contact_id, old, new in batch:
            if old is None:
                missing.append(
                    ContactLifecycle(contact_id=contact_id, stage=new, since=now, updated_at=now)
                )
            else:
                moves[new].append(contact_id)
            changes.append(
                LifecycleChange(
                    contact_id=contact_id, from_stage=old or "", to_stage=new, changed_at=now
                )
            )
            key = (old or "", new)
            result.transitions[key] = result.transitions.get(key, 0) + 1
        with transaction.atomic():
            ContactLifecycle.objects.bulk_create(missing, batch_size=BATCH_SIZE)
            for stage, ids in moves.items():
                ContactLifecycle.objects.filter(contact_id__in=ids).update(
                    stage=stage, since=now, updated_at=now
                )
            LifecycleChange.objects.bulk_create(changes, batch_size=BATCH_SIZE)
        result.changed += len(batch)
        if progress:
            progress(result.changed)
    ContactLifecycle.objects.filter(contact__is_erased=True).delete()
    result.by_stage = lifecycle_distribution()
    return result


def lifecycle_distribution() -> dict[str, int]:
    """Contacts per stage, in the stages' order, zeros included."""
    counts = dict(ContactLifecycle.objects.values_list("stage").annotate(n=Count("id")).order_by())
    return {stage.value: int(counts.get(stage.value, 0)) for stage in S}
