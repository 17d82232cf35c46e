"""`journeys advance` and the beat task run what is due and say what moved."""

from __future__ import annotations

import datetime as dt
import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from journeys.engine.due import due_advance
from journeys.models import Enrollment, StepRun
from journeys.tasks import journeys_advance_due
from tests.factories import ContactFactory
from tests.journeys.engine_helpers import enrol, journey_of

pytestmark = pytest.mark.django_db

NOTE = {"id": "note", "type": "action", "action": "set_attribute", "attribute": "a", "value": "1"}
WAIT = {"id": "later", "type": "wait", "days": 1}


def _journeys() -> None:
    now = timezone.now() - dt.timedelta(seconds=1)
    done = journey_of(NOTE, slug="done-now")
    waits = journey_of(NOTE, WAIT, slug="waits")
    for contact in ContactFactory.create_batch(3):
        enrol(done, contact, at=now)
    for contact in ContactFactory.create_batch(2):
        enrol(waits, contact, at=now)


def test_journeys_advance_prints_what_moved() -> None:
    _journeys()
    out = StringIO()
    call_command("journeys", "advance", stdout=out)
    assert out.getvalue() == "advanced 5 enrollments (5 steps run): 3 completed, 2 waiting\n"
    out = StringIO()
    call_command("journeys", "advance", "--json", stdout=out)
    assert json.loads(out.getvalue()) == {"enrollments": 0, "steps": 0, "rounds": 0, "states": {}}


def test_the_beat_task_advances_what_is_due() -> None:
    _journeys()
    assert journeys_advance_due() == 5
    assert Enrollment.objects.filter(status="completed").count() == 3
    assert StepRun.objects.count() == 5


def test_full_batches_beyond_the_first_are_handed_to_other_workers() -> None:
    _journeys()
    handed: list[list[int]] = []
    report, count = due_advance(
        batch=2, hand_off=lambda ids, lease: handed.append(ids), hand_off_max=1
    )
    assert count == 1 and len(handed[0]) == 2
    assert report.enrollments == 3  # the other two batches ran here
    assert not StepRun.objects.filter(enrollment_id__in=handed[0]).exists()


def test_a_handed_off_batch_is_advanced_by_its_task_with_the_lease_it_was_given() -> None:
    from journeys.engine import claim_lease, enrollments_claim
    from journeys.tasks import journeys_advance_batch

    _journeys()
    now = timezone.now()
    lease = claim_lease(now)
    ids = enrollments_claim(now=now, limit=100, lease=lease)
    assert journeys_advance_batch(ids, (lease + dt.timedelta(seconds=1)).isoformat()) == 0
    assert journeys_advance_batch(ids, lease.isoformat()) == 5
    assert journeys_advance_batch(ids, lease.isoformat()) == 0
