"""Builders shared by the engine tests: a journey of given steps, an enrollment placed as
entry places it, and one beat tick (claim, then advance) at a given instant."""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm.models import Contact
from journeys.engine import AdvanceReport, claim_lease, enrollments_advance, enrollments_claim
from journeys.flow import Flow
from journeys.models import Enrollment, Journey, StepRun
from journeys.services import journey_save
from tests.journeys.helpers import with_steps

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)  # a Monday


def journey_of(*steps: dict[str, Any], slug: str = "flow", **fields: Any) -> Journey:
    data = with_steps(*steps)
    data.update(slug=slug, name=slug, **fields)
    return journey_save(data, via="test").journey


def enrol(
    journey: Journey, contact: Contact, *, at: dt.datetime = T0, key: str = "", **properties: Any
) -> Enrollment:
    journey.refresh_from_db()
    version = journey.current_version
    assert version is not None
    return Enrollment.objects.create(
        journey=journey,
        version=version,
        contact=contact,
        entry_key=key,
        step_id=Flow(version.steps).first() or "",
        due_at=at,
        entered_at=at,
        step_started_at=at,
        entry_properties=properties,
    )


def tick(at: dt.datetime) -> AdvanceReport:
    """What the beat task does at `at`: claim what is due and advance it."""
    lease = claim_lease(at)
    ids = enrollments_claim(now=at, limit=10_000, lease=lease)
    return enrollments_advance(ids, lease=lease, now=at)


def ledger(enrollment: Enrollment) -> list[tuple[str, str, dict[str, Any]]]:
    """(step id, status, outcome) of every step the enrollment ran, in order."""
    return [
        (run.step_id, run.status, run.outcome)
        for run in StepRun.objects.filter(enrollment=enrollment).order_by("sequence")
    ]


def fresh(enrollment: Enrollment) -> Enrollment:
    enrollment.refresh_from_db()
    return enrollment
