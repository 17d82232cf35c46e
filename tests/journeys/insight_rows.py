"""Enrollment and step-ledger rows written directly in the shared formats (what the engine
writes), for the status, explain, diagram and contact page tests."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone

from crm.models import Contact
from journeys.models import Enrollment, Journey, StepRun
from journeys.services import journey_save
from tests.journeys.helpers import example, make_example_campaigns

NOW = dt.datetime(2026, 3, 2, 12, 0, tzinfo=dt.UTC)

BRANCH_THEN = {
    "branch": "then",
    "conditions": [
        {
            "path": "conditions[0]",
            "description": "no order_completed event in 24 hours",
            "holds": True,
            "values": {"order_completed events in the last 24 h": 0},
        }
    ],
}
BRANCH_ELSE = {
    "branch": "else",
    "conditions": [
        {
            "path": "conditions[0]",
            "description": "no order_completed event in 24 hours",
            "holds": False,
            "values": {"order_completed events in the last 24 h": 2},
        }
    ],
}
SENT = {
    "campaign": "browse-abandonment",
    "channel": "email",
    "fallback": False,
    "delivery_id": 7,
    "delivery_status": "sent",
}


def split_journey() -> Journey:
    """The documented example with a split (20 % holdout) after the first email."""
    make_example_campaigns()
    data = example()
    then = data["steps"][1]["then"]
    data["steps"][1]["then"] = [
        then[0],
        {
            "id": "ab",
            "type": "split",
            "holdout": 20,
            "arms": [{"weight": 50, "steps": [then[2]]}, {"weight": 50, "steps": []}],
        },
    ]
    return journey_save(data, via="test").journey


@dataclass
class Rows:
    journey: Journey
    contacts: list[Contact]
    enrollments: list[Enrollment]


def _run(enrollment: Enrollment, step_id: str, sequence: int, outcome: dict[str, Any]) -> None:
    failed = "error" in outcome
    StepRun.objects.create(
        enrollment=enrollment,
        step_id=step_id,
        sequence=sequence,
        status=StepRun.Status.FAILED if failed else StepRun.Status.DONE,
        outcome=outcome,
        started_at=enrollment.entered_at + dt.timedelta(hours=sequence),
        finished_at=enrollment.entered_at + dt.timedelta(hours=sequence),
    )


# Per contact: (final status, step id, exit reason, [(step id, outcome)...]).
PATHS: list[tuple[str, str, str, list[tuple[str, dict[str, Any]]]]] = [
    (
        "converted",
        "sms-1",
        "goal order_completed",
        [
            ("cool-off", {"until": "2026-03-01T13:00:00+00:00"}),
            ("bought", BRANCH_THEN),
            ("email-1", SENT),
            ("ab", {"arm": "arms[0]"}),
            ("sms-1", {**SENT, "campaign": "win-back-sms", "channel": "sms", "delivery_id": 8}),
        ],
    ),
    ("active", "cool-off", "", []),
    ("active", "email-1", "", [("cool-off", {"until": "x"}), ("bought", BRANCH_THEN)]),
    (
        "exited",
        "done",
        "exit step done",
        [("cool-off", {"until": "x"}), ("bought", BRANCH_ELSE), ("done", {"exit": True})],
    ),
    (
        "completed",
        "ab",
        "completed",
        [
            ("cool-off", {"until": "x"}),
            ("bought", BRANCH_THEN),
            ("email-1", SENT),
            ("ab", {"arm": "holdout"}),
        ],
    ),
    (
        "failed",
        "email-1",
        "email-1: campaign archived",
        [
            ("cool-off", {"until": "x"}),
            ("bought", BRANCH_THEN),
            ("email-1", {"error": "campaign archived"}),
        ],
    ),
]


def rows(journey: Journey | None = None) -> Rows:
    journey = journey or split_journey()
    version = journey.current_version
    assert version is not None
    contacts, enrollments = [], []
    for index, (status, step_id, reason, path) in enumerate(PATHS):
        contact = Contact.objects.create(email=f"c{index}@example.com", first_name=f"C{index}")
        entered = NOW - dt.timedelta(days=1)
        active = status == "active"
        enrollment = Enrollment.objects.create(
            journey=journey,
            version=version,
            contact=contact,
            status=status,
            step_id=step_id,
            sequence=len(path),
            due_at=NOW + dt.timedelta(hours=3) if active else None,
            entered_at=entered,
            step_started_at=entered,
            finished_at=None if active else NOW - dt.timedelta(hours=1),
            exit_reason=reason,
            conversion_value=Decimal("42.50") if status == "converted" else None,
        )
        for sequence, (run_step, outcome) in enumerate(path):
            _run(enrollment, run_step, sequence, outcome)
        contacts.append(contact)
        enrollments.append(enrollment)
    return Rows(journey, contacts, enrollments)


def now() -> dt.datetime:
    return timezone.now()
