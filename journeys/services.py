"""Saving a journey: validated, and published as a new immutable version only when its step
tree changed. Saving the same content again writes nothing."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone

from journeys.models import Enrollment, Journey, JourneyVersion
from journeys.steps import Problem
from journeys.validation import journey_validate, structure_hash


class JourneyInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))
        self.problems = problems


@dataclass(frozen=True)
class JourneySaved:
    journey: Journey
    created: bool
    changed: bool  # False: the content was already saved, nothing was written
    published: JourneyVersion | None  # the new version, when the steps changed


def _apply(journey: Journey, clean: dict[str, Any]) -> None:
    from segments.models import Segment

    journey.name = clean["name"]
    journey.description = clean["description"]
    journey.enabled = clean["enabled"]
    journey.status = clean["status"]
    reentry = clean["reentry"]
    journey.reentry_mode = reentry["mode"]
    journey.reentry_days = reentry.get("days")
    journey.reentry_key = reentry.get("key", "")
    goal = clean["goal"] or {}
    journey.goal_event = goal.get("event", "")
    journey.goal_within_days = goal.get("within_days")
    journey.goal_where = goal.get("where", [])
    slug = clean["entry_segment"]
    journey.entry_segment = Segment.objects.get(slug=slug) if slug else None


def _publisher(via: str, user: AbstractBaseUser | AnonymousUser | None) -> str:
    if user is not None and user.is_authenticated:
        return f"{user.get_username()} ({via})" if via else user.get_username()
    return via


def _publish(journey: Journey, clean_steps: list[dict[str, Any]], by: str) -> JourneyVersion:
    last = journey.versions.aggregate(n=Max("number"))["n"] or 0
    version = JourneyVersion.objects.create(
        journey=journey,
        number=last + 1,
        steps=clean_steps,
        structure_hash=structure_hash(clean_steps),
        published_by=by[:150],
    )
    journey.current_version = version
    journey.save(update_fields=["current_version", "updated_at"])
    return version


def journey_save(
    data: dict[str, Any], *, via: str, user: AbstractBaseUser | AnonymousUser | None = None
) -> JourneySaved:
    """Validate `data` (a journey as YAML holds it) and create or update the journey by its
    slug. Raises JourneyInvalid with every problem; contacts already enrolled stay on the
    version they entered. Without a status the journey keeps its own (a new one is active)."""
    clean, problems = journey_validate(data)
    if problems:
        raise JourneyInvalid(problems)
    with transaction.atomic():
        journey = (
            # of=self: PostgreSQL cannot lock the nullable side of the outer joins.
            Journey.objects.select_for_update(of=("self",))
            .select_related("current_version", "entry_segment")
            .filter(slug=clean["slug"])
            .first()
        )
        created = journey is None
        if journey is None:
            journey = Journey(slug=clean["slug"])
        if clean["status"] is None:
            clean["status"] = journey.status
        if not created and journey.snapshot() == clean:
            return JourneySaved(journey=journey, created=False, changed=False, published=None)
        _apply(journey, clean)
        journey.save()
        current = journey.current_version
        published = None
        if current is None or current.structure_hash != structure_hash(clean["steps"]):
            published = _publish(journey, clean["steps"], _publisher(via, user))
    return JourneySaved(journey=journey, created=created, changed=True, published=published)


@dataclass(frozen=True)
class Held:
    journeys: int  # journeys whose status changed
    contacts: int  # their active enrollments: held while paused, carrying on when resumed
    due: int  # of those, already due: they run at once on resume


def _held(journeys: QuerySet[Journey], now: datetime) -> tuple[int, int]:
    active = Enrollment.objects.filter(journey__in=journeys, status=Enrollment.Status.ACTIVE)
    counts = active.aggregate(n=Count("id"), due=Count("id", filter=Q(due_at__lte=now)))
    return int(counts["n"]), int(counts["due"])


def journeys_pause(*, journeys: QuerySet[Journey]) -> Held:
    """Pause: the claim skips a paused journey's enrollments, so every contact stays at its
    step (due or not) and no one new enters, until resumed."""
    with transaction.atomic():
        changed = journeys.exclude(status=Journey.Status.PAUSED)
        ids = list(changed.values_list("pk", flat=True))
        Journey.objects.filter(pk__in=ids).update(
            status=Journey.Status.PAUSED, updated_at=timezone.now()
        )
        contacts, due = _held(Journey.objects.filter(pk__in=ids), timezone.now())
    return Held(len(ids), contacts, due)


def journeys_resume(*, journeys: QuerySet[Journey]) -> Held:
    """Resume: the held contacts carry on where they were; those whose time came while
    paused are due, and the advance runs at once instead of at the next beat."""
    with transaction.atomic():
        changed = journeys.filter(status=Journey.Status.PAUSED)
        ids = list(changed.values_list("pk", flat=True))
        Journey.objects.filter(pk__in=ids).update(
            status=Journey.Status.ACTIVE, updated_at=timezone.now()
        )
        contacts, due = _held(Journey.objects.filter(pk__in=ids), timezone.now())
        if due:
            _advance_due_soon()
    return Held(len(ids), contacts, due)


def _advance_due_soon() -> None:
    # Lazily: journeys.tasks imports the engine, which imports this module's neighbours.
    from journeys.tasks import journeys_advance_due

    journeys_advance_due.delay_on_commit()
