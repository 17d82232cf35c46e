"""Moving waiting contacts from an older version to the current one: kept steps keep their
contacts, a removed step that holds contacts must be answered before anything moves."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from journeys.models import Enrollment, Journey, JourneyVersion, StepRun
from journeys.moving import EXIT, MoveRefused, enrollments_move, move_plan
from journeys.services import journey_save
from tests.factories import ContactFactory
from tests.journeys.helpers import example, make_example_campaigns

pytestmark = pytest.mark.django_db


def _versions() -> tuple[Journey, JourneyVersion, JourneyVersion]:
    make_example_campaigns()
    first = journey_save(example(), via="test").published
    data = example()
    # v2 drops the SMS step and the day's wait.
    data["steps"][1]["then"] = data["steps"][1]["then"][:1]
    second = journey_save(data, via="test").published
    assert first is not None and second is not None
    return second.journey, first, second


def _enrol(version: JourneyVersion, step_id: str, n: int) -> list[int]:
    return [
        Enrollment.objects.create(
            journey=version.journey,
            version=version,
            contact=ContactFactory.create(),
            step_id=step_id,
        ).pk
        for _ in range(n)
    ]


def test_a_removed_step_holding_contacts_must_be_answered_first() -> None:
    journey, v1, v2 = _versions()
    _enrol(v1, "cool-off", 2)
    held = _enrol(v1, "wait-day", 3)
    plan = move_plan(journey=journey, source=v1)
    assert plan.unmapped == {"wait-day": 3}
    with pytest.raises(MoveRefused) as refused:
        enrollments_move(plan)
    assert refused.value.problems == [
        "wait-day: 3 contact(s) wait at this step, which version 2 removed: say where they "
        "go (a step id or exit)."
    ]
    assert Enrollment.objects.filter(version=v1).count() == 5  # nothing moved

    StepRun.objects.create(enrollment_id=held[0], step_id="wait-day", sequence=0)
    plan = move_plan(journey=journey, source=v1, mapping={"wait-day": EXIT})
    assert plan.moves == {"cool-off": ("cool-off", 2), "wait-day": (EXIT, 3)}
    assert enrollments_move(plan) == 5
    assert Enrollment.objects.filter(version=v2, status="active", step_id="cool-off").count() == 2
    exited = Enrollment.objects.filter(version=v2, status="exited")
    assert exited.count() == 3
    assert exited.first().exit_reason == "moved to version 2: wait-day removed"  # type: ignore[union-attr]
    assert StepRun.objects.get(enrollment_id=held[0]).status == "done"


def test_mapping_onto_a_step_runs_it_now_and_bad_mappings_are_named() -> None:
    journey, v1, v2 = _versions()
    ids = _enrol(v1, "sms-1", 2)
    with pytest.raises(MoveRefused) as refused:
        move_plan(
            journey=journey,
            source=v1,
            mapping={"sms-1": "nope", "cool-off": "done", "ghost": EXIT},
        )
    assert refused.value.problems == [
        "cool-off: the step is still in version 2; its contacts stay at it, so it takes no "
        "mapping.",
        "ghost: version 1 has no such step.",
        "sms-1: version 2 has no step 'nope' (one of its step ids, or exit).",
    ]
    with pytest.raises(MoveRefused):
        move_plan(journey=journey, source=v2)
    plan = move_plan(journey=journey, source=v1, mapping={"sms-1": "done"})
    enrollments_move(plan)
    rows = Enrollment.objects.filter(pk__in=ids)
    assert {(r.version_id, r.step_id, r.status) for r in rows} == {(v2.pk, "done", "active")}
    assert all(r.due_at is not None for r in rows)


def test_the_move_command_shows_then_applies_and_names_unanswered_steps() -> None:
    journey, v1, v2 = _versions()
    _enrol(v1, "cool-off", 1)
    _enrol(v1, "sms-1", 2)
    with pytest.raises(CommandError) as refused:
        call_command("journeys", "move", journey.slug, "--from-version", "1", stdout=StringIO())
    assert "sms-1: 2 contact(s) need --map sms-1=…" in str(refused.value)
    out = StringIO()
    args = ("journeys", "move", journey.slug, "--from-version", "1", "--map", "sms-1=exit")
    call_command(*args, stdout=out)
    assert out.getvalue() == (
        "cool-off: 1 contact(s) stays at it\n"
        "sms-1: 2 contact(s) goes to exit\n"
        "nothing moved: add --apply to move them\n"
    )
    call_command(*args, "--apply", stdout=(out := StringIO()))
    assert out.getvalue().endswith("moved 3 contact(s) from version 1 to version 2\n")
    assert Enrollment.objects.filter(version=v2).count() == 3
