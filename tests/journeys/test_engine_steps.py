"""The engine runs each step type: wait, branch, split, action, exit, through the ledger."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from journeys.models import Enrollment, Journey, StepRun
from journeys.services import journey_save
from segments.models import StaticList
from tests.factories import ContactFactory, EventFactory
from tests.journeys.engine_helpers import T0, enrol, fresh, journey_of, ledger, tick
from tests.journeys.helpers import with_steps

pytestmark = pytest.mark.django_db

MIN = dt.timedelta(minutes=1)


def _attribute(step_id: str, value: str) -> dict[str, Any]:
    return {
        "id": step_id,
        "type": "action",
        "action": "set_attribute",
        "attribute": "journey_note",
        "value": value,
    }


def test_a_wait_holds_the_contact_until_its_time_then_the_next_steps_run() -> None:
    journey = journey_of(
        {"id": "cool-off", "type": "wait", "minutes": 240}, _attribute("note", "x")
    )
    contact = ContactFactory.create()
    enrollment = enrol(journey, contact)
    tick(T0)
    assert fresh(enrollment).step_id == "cool-off" and enrollment.due_at == T0 + 240 * MIN
    assert ledger(enrollment) == []
    tick(T0 + 239 * MIN)
    assert fresh(enrollment).step_id == "cool-off"
    report = tick(T0 + 240 * MIN)
    enrollment = fresh(enrollment)
    assert enrollment.status == Enrollment.Status.COMPLETED
    assert enrollment.exit_reason == "completed" and enrollment.due_at is None
    assert ledger(enrollment) == [
        ("cool-off", "done", {"until": (T0 + 240 * MIN).isoformat()}),
        (
            "note",
            "done",
            {
                "action": "set_attribute",
                "attribute": "journey_note",
                "value": "x",
                "previous": None,
            },
        ),
    ]
    contact.refresh_from_db()
    assert contact.attributes["journey_note"] == "x"
    assert report.states == {"completed": 1} and report.steps == 2


def test_a_branch_sends_buyers_and_browsers_down_different_lists() -> None:
    journey = journey_of(
        {
            "id": "bought",
            "type": "branch",
            "conditions": [{"id": "event_absent", "event": "order_completed", "hours": 24}],
            "then": [_attribute("nudge", "browser")],
            "else": [{"id": "done", "type": "exit"}],
        }
    )
    browser, buyer = ContactFactory.create(), ContactFactory.create()
    EventFactory.create(
        contact=buyer, type="order_completed", occurred_at=T0 - 60 * MIN, properties={}
    )
    first, second = enrol(journey, browser), enrol(journey, buyer)
    tick(T0)
    assert fresh(first).status == Enrollment.Status.COMPLETED
    assert fresh(second).status == Enrollment.Status.EXITED
    assert second.exit_reason == "exit step done"
    (step, _, outcome), *_ = ledger(first)
    assert step == "bought" and outcome["branch"] == "then"
    assert outcome["conditions"][0]["holds"] is True
    assert [(s, o.get("branch")) for s, _, o in ledger(second)] == [
        ("bought", "else"),
        ("done", None),
    ]
    assert ledger(second)[1][2] == {"exit": True}


def test_a_split_sends_each_contact_down_its_arm_and_holdout_past_the_split() -> None:
    journey = journey_of(
        {
            "id": "ab",
            "type": "split",
            "holdout": 20,
            "arms": [
                {"weight": 50, "steps": [_attribute("arm-a", "a")]},
                {"weight": 50, "steps": [_attribute("arm-b", "b")]},
            ],
        },
        _attribute("after", "after"),
    )
    contacts = ContactFactory.create_batch(30)
    enrollments = [enrol(journey, contact) for contact in contacts]
    tick(T0)
    arms = set()
    for enrollment in enrollments:
        steps = ledger(enrollment)
        arm = steps[0][2]["arm"]
        arms.add(arm)
        expected = {"arms[0]": ["ab", "arm-a", "after"], "arms[1]": ["ab", "arm-b", "after"]}
        assert [s for s, _, _ in steps] == expected.get(arm, ["ab", "after"])
        assert fresh(enrollment).status == Enrollment.Status.COMPLETED
    assert arms == {"arms[0]", "arms[1]", "holdout"}


def test_an_action_that_cannot_run_fails_the_enrollment_with_the_step_and_error() -> None:
    StaticList.objects.create(name="VIP", slug="vip")
    journey = journey_of({"id": "vip", "type": "action", "action": "add_to_list", "list": "vip"})
    StaticList.objects.all().delete()
    enrollment = enrol(journey, ContactFactory.create())
    tick(T0)
    enrollment = fresh(enrollment)
    assert enrollment.status == Enrollment.Status.FAILED
    assert enrollment.exit_reason.startswith("vip: ")
    [(step, status, outcome)] = ledger(enrollment)
    assert (step, status) == ("vip", "failed") and "vip" in outcome["error"]


def test_an_erased_contact_leaves_the_journey() -> None:
    journey = journey_of(_attribute("note", "x"))
    contact = ContactFactory.create(is_erased=True)
    enrollment = enrol(journey, contact)
    tick(T0)
    enrollment = fresh(enrollment)
    assert (enrollment.status, enrollment.exit_reason) == ("exited", "contact erased")
    assert ledger(enrollment) == []


def test_a_paused_journey_holds_its_contacts_in_place_until_resumed() -> None:
    journey = journey_of(_attribute("note", "x"))
    enrollment = enrol(journey, ContactFactory.create())
    Journey.objects.filter(pk=journey.pk).update(status=Journey.Status.PAUSED)
    report = tick(T0)
    assert report.enrollments == 0 and fresh(enrollment).due_at == T0
    Journey.objects.filter(pk=journey.pk).update(status=Journey.Status.ACTIVE)
    tick(T0 + MIN)
    assert fresh(enrollment).status == Enrollment.Status.COMPLETED


def test_contacts_stay_on_the_version_they_entered_after_an_edit() -> None:
    data = with_steps({"id": "pause", "type": "wait", "minutes": 10}, _attribute("note", "v1"))
    data.update(slug="pinned", name="Pinned")
    journey = journey_save(data, via="test").journey
    early = enrol(journey, ContactFactory.create())
    data["steps"] = [{"id": "pause", "type": "wait", "minutes": 10}, _attribute("note2", "v2")]
    assert journey_save(data, via="test").published is not None
    late = enrol(journey, ContactFactory.create())
    tick(T0)
    tick(T0 + 10 * MIN)
    assert [s for s, _, _ in ledger(early)] == ["pause", "note"]
    assert [s for s, _, _ in ledger(late)] == ["pause", "note2"]
    assert fresh(early).contact.attributes["journey_note"] == "v1"
    assert fresh(late).contact.attributes["journey_note"] == "v2"
    assert StepRun.objects.count() == 4


def test_a_journey_paused_after_the_claim_gets_its_contacts_back_at_once() -> None:
    from journeys.engine import claim_lease, enrollments_advance, enrollments_claim

    journey = journey_of(_attribute("note", "x"))
    enrollment = enrol(journey, ContactFactory.create())
    lease = claim_lease(T0)
    ids = enrollments_claim(now=T0, limit=10, lease=lease)
    Journey.objects.filter(pk=journey.pk).update(status=Journey.Status.PAUSED)
    report = enrollments_advance(ids, lease=lease, now=T0 + MIN)
    assert report.states == {"due again": 1} and ledger(enrollment) == []
    assert fresh(enrollment).due_at == T0 + MIN  # not held until the lease ends
