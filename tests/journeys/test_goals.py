"""Reaching a journey's goal takes the contact out at once, as a conversion with its value."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from crm.models import Contact, Event
from crm.services.contact_input import contact_input_parse
from crm.services.event_input import EventInput
from crm.services.events import events_ingest
from journeys.entry import enrollments_start
from journeys.goals import goals_check
from journeys.models import Enrollment, Journey
from tests.factories import ContactFactory, EventFactory
from tests.journeys.test_entry import make_journey
from tests.worker import celery_worker, wait_for

GOAL = {
    "event": "order_completed",
    "within_days": 7,
    "where": [{"property": "category", "operator": "equals", "value": "kitchen"}],
}


def _enter(journey: Journey, contact: Contact, at: dt.datetime) -> Enrollment:
    result = enrollments_start(journey=journey, entrants=[(contact.pk, {})], now=at, source="t")
    return Enrollment.objects.get(pk=result.created_ids[0])


def _order(contact: Contact, at: dt.datetime, value: str, category: str = "kitchen") -> Event:
    return EventFactory.create(
        contact=contact,
        type="order_completed",
        occurred_at=at,
        value=Decimal(value),
        properties={"category": category},
    )


@pytest.mark.django_db
def test_the_first_goal_event_after_entry_converts_with_its_value() -> None:
    journey = make_journey(goal=GOAL)
    contact = ContactFactory.create()
    entered = timezone.now() - dt.timedelta(days=2)
    enrollment = _enter(journey, contact, entered)
    first = _order(contact, entered + dt.timedelta(hours=3), "42.50")
    _order(contact, entered + dt.timedelta(hours=5), "10.00")
    assert goals_check(contact_ids=[contact.pk], event_types=["order_completed"]) == 1
    enrollment.refresh_from_db()
    assert enrollment.status == Enrollment.Status.CONVERTED
    assert enrollment.exit_reason == "goal order_completed"
    assert enrollment.conversion_event_id == first.pk
    assert enrollment.conversion_value == Decimal("42.50")
    assert enrollment.due_at is None and enrollment.finished_at is not None


@pytest.mark.django_db
def test_a_goal_event_that_fails_the_filters_or_falls_outside_the_window_does_not_convert() -> None:
    journey = make_journey(goal=GOAL)
    other_category, before, too_late = ContactFactory.create_batch(3)
    entered = timezone.now() - dt.timedelta(days=10)
    for contact in (other_category, before, too_late):
        _enter(journey, contact, entered)
    _order(other_category, entered + dt.timedelta(days=1), "5", category="garden")
    _order(before, entered - dt.timedelta(minutes=1), "5")
    _order(too_late, entered + dt.timedelta(days=7, minutes=1), "5")
    assert goals_check(contact_ids=[c.pk for c in (other_category, before, too_late)]) == 0
    assert set(Enrollment.objects.values_list("status", flat=True)) == {"active"}


@pytest.mark.django_db
def test_a_finished_enrollment_is_never_converted_and_other_journeys_are_untouched() -> None:
    journey = make_journey(goal=GOAL)
    no_goal = make_journey("no-goal")
    contact = ContactFactory.create()
    entered = timezone.now() - dt.timedelta(days=1)
    done = _enter(journey, contact, entered)
    Enrollment.objects.filter(pk=done.pk).update(status=Enrollment.Status.EXITED)
    plain = _enter(no_goal, contact, entered)
    _order(contact, entered + dt.timedelta(hours=1), "9")
    assert goals_check(contact_ids=[contact.pk], event_types=["order_completed"]) == 0
    done.refresh_from_db()
    plain.refresh_from_db()
    assert (done.status, plain.status) == ("exited", "active")


@pytest.mark.django_db
def test_the_sweep_converts_goals_reached_while_no_worker_ran(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import journeys.goals

    monkeypatch.setattr(journeys.goals, "SWEEP_CHUNK", 2)
    journey = make_journey(goal=GOAL)
    contacts = ContactFactory.create_batch(5)
    entered = timezone.now() - dt.timedelta(days=1)
    for contact in contacts:
        _enter(journey, contact, entered)
    for contact in contacts[1:]:
        _order(contact, entered + dt.timedelta(hours=1), "3")
    from journeys.tasks import journeys_goals_check

    assert journeys_goals_check() == 4
    assert Enrollment.objects.filter(status="converted").count() == 4
    assert Enrollment.objects.get(status="active").contact_id == contacts[0].pk


@pytest.mark.django_db
def test_the_goal_sweep_is_scheduled() -> None:
    from config.periodic import PERIODIC_TASKS

    [spec] = [s for s in PERIODIC_TASKS if s["task"] == "journeys.tasks.journeys_goals_check"]
    assert spec["every_seconds"] == 300


@pytest.mark.django_db(transaction=True)
def test_an_ingest_of_another_event_type_enqueues_nothing(
    django_capture_on_commit_callbacks: Any,
) -> None:
    make_journey(goal=GOAL)
    contact, _ = contact_input_parse({"email": "zoe@example.com"})
    assert contact is not None
    from journeys.receivers import on_events_ingested_goals

    with django_capture_on_commit_callbacks() as callbacks:
        on_events_ingested_goals(None, contact_ids=[1], event_types={"product_viewed"})
    assert callbacks == []


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_an_ingested_goal_event_converts_the_contact_through_the_worker(tmp_path: Path) -> None:
    journey = make_journey(goal=GOAL)
    buyers = [contact_input_parse({"email": f"buyer{n}@example.com"})[0] for n in range(2)]
    for n, buyer in enumerate(buyers):
        assert buyer is not None
        events_ingest(
            [
                EventInput(
                    client_id=f"hello-{n}",
                    type="signed_up",
                    occurred_at=timezone.now(),
                    contact=buyer,
                )
            ],
            source="api",
        )
    ids = list(Contact.objects.order_by("pk").values_list("pk", flat=True))
    entered = timezone.now() - dt.timedelta(minutes=1)
    enrollments_start(journey=journey, entrants=[(i, {}) for i in ids], now=entered, source="t")

    def order(n: int, category: str) -> float:
        started = time.monotonic()
        buyer = buyers[n]
        assert buyer is not None
        events_ingest(
            [
                EventInput(
                    client_id=f"order-{n}-{category}",
                    type="order_completed",
                    occurred_at=timezone.now(),
                    contact=buyer,
                    properties={"category": category},
                    value=Decimal("19.90"),
                )
            ],
            source="api",
        )
        return started

    def converted(contact_id: int) -> bool:
        return Enrollment.objects.filter(contact_id=contact_id, status="converted").exists()

    with celery_worker(tmp_path=tmp_path, queues="evaluation"):
        # The first conversion warms the worker up (imports, connections).
        order(0, "kitchen")
        wait_for(lambda: converted(ids[0]), timeout=90, what="the warm-up conversion")
        # A goal event failing the filter converts no one.
        order(1, "garden")
        started = order(1, "kitchen")
        wait_for(lambda: converted(ids[1]), timeout=30, what="the conversion")
        latency = time.monotonic() - started
    print(f"goal event to conversion latency (warm worker): {latency:.2f}s")
    enrollment = Enrollment.objects.get(contact_id=ids[1])
    assert enrollment.conversion_value == Decimal("19.90")
    assert enrollment.conversion_event is not None
    assert enrollment.conversion_event.properties == {"category": "kitchen"}
    assert latency < 1.0
