"""Waiting: until a local time across a DST change, and for an event (with filters and a
key of the entry event), on ingest within a second through a real worker."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from crm.services.contact_input import contact_input_parse
from crm.services.event_input import EventInput
from crm.services.events import events_ingest
from journeys.engine.due import waits_check
from journeys.models import Enrollment
from tests.factories import ContactFactory, EventFactory
from tests.journeys.engine_helpers import T0, enrol, fresh, journey_of, ledger, tick
from tests.worker import celery_worker, wait_for

MIN = dt.timedelta(minutes=1)
UTC = dt.UTC


def _note(step_id: str) -> dict[str, Any]:
    return {
        "id": step_id,
        "type": "action",
        "action": "set_attribute",
        "attribute": "path",
        "value": step_id,
    }


def _wait_for(**options: Any) -> dict[str, Any]:
    return {
        "id": "cart",
        "type": "wait_for",
        "event": "checkout_started",
        "hours": 4,
        "matched": [_note("went-on")],
        "timed_out": [_note("gave-up")],
        **options,
    }


@pytest.mark.django_db
def test_a_wait_until_a_local_time_lands_on_the_wall_clock_across_the_dst_change() -> None:
    journey = journey_of({"id": "morning", "type": "wait", "until": "09:30"}, _note("done"))
    paris = ContactFactory.create(timezone="Europe/Paris")
    # Saturday 28 March 2026, 11:00 in Paris (CET, UTC+1); clocks go forward that night.
    entered = dt.datetime(2026, 3, 28, 10, 0, tzinfo=UTC)
    enrollment = enrol(journey, paris, at=entered)
    tick(entered)
    # Sunday 09:30 in Paris is summer time (UTC+2): 07:30 UTC, not 08:30.
    sunday = dt.datetime(2026, 3, 29, 7, 30, tzinfo=UTC)
    assert fresh(enrollment).due_at == sunday
    tick(sunday - MIN)
    assert fresh(enrollment).step_id == "morning"
    tick(sunday)
    assert fresh(enrollment).status == Enrollment.Status.COMPLETED
    assert ledger(enrollment)[0][2] == {"until": sunday.isoformat()}


@pytest.mark.django_db
def test_a_wait_until_a_time_on_given_weekdays_skips_the_other_days() -> None:
    step = {"id": "monday", "type": "wait", "until": "09:30", "weekdays": ["mon"]}
    journey = journey_of(step, _note("done"))
    new_york = ContactFactory.create(timezone="America/New_York")
    entered = dt.datetime(2026, 3, 28, 10, 0, tzinfo=UTC)  # a Saturday
    enrollment = enrol(journey, new_york, at=entered)
    tick(entered)
    # Monday 30 March 09:30 in New York (EDT, UTC-4).
    assert fresh(enrollment).due_at == dt.datetime(2026, 3, 30, 13, 30, tzinfo=UTC)


@pytest.mark.django_db
def test_a_wait_for_goes_on_matched_when_the_event_came_and_timed_out_when_not() -> None:
    journey = journey_of(_wait_for(where=[{"property": "category", "value": "kitchen"}]))
    keen, small, idle = ContactFactory.create_batch(3)
    runs = {c.pk: enrol(journey, c) for c in (keen, small, idle)}
    tick(T0)
    assert all(fresh(e).awaiting_event == "checkout_started" for e in runs.values())
    assert fresh(runs[keen.pk]).due_at == T0 + 4 * 60 * MIN
    event = EventFactory.create(
        contact=keen,
        type="checkout_started",
        occurred_at=T0 + MIN,
        properties={"category": "kitchen"},
    )
    EventFactory.create(
        contact=small,
        type="checkout_started",
        occurred_at=T0 + MIN,
        properties={"category": "garden"},
    )
    waits_check(contact_ids=[keen.pk, small.pk], event_types=["checkout_started"], now=T0 + MIN)
    assert [s for s, _, _ in ledger(runs[keen.pk])] == ["cart", "went-on"]
    assert ledger(runs[keen.pk])[0][2] == {"matched": event.pk, "event": "checkout_started"}
    assert fresh(runs[small.pk]).step_id == "cart"  # filtered out: still waiting
    assert fresh(runs[small.pk]).due_at == T0 + 4 * 60 * MIN
    tick(T0 + 4 * 60 * MIN)
    for contact in (small, idle):
        steps = ledger(runs[contact.pk])
        assert [s for s, _, _ in steps] == ["cart", "gave-up"]
        assert steps[0][2] == {"timed_out": True}


@pytest.mark.django_db
def test_an_event_that_raced_the_wait_is_found_by_the_check_at_the_timeout() -> None:
    journey = journey_of(_wait_for())
    contact = ContactFactory.create()
    enrollment = enrol(journey, contact)
    tick(T0)
    # Ingested without the signal reaching anyone (as if the receiver lost the race).
    EventFactory.create(contact=contact, type="checkout_started", occurred_at=T0 + MIN)
    tick(T0 + 4 * 60 * MIN)
    assert [s for s, _, _ in ledger(enrollment)] == ["cart", "went-on"]


@pytest.mark.django_db
def test_two_carts_of_one_contact_advance_separately_on_their_own_cart_id() -> None:
    journey = journey_of(
        _wait_for(match_key="cart_id"), reentry={"mode": "once_per_key", "key": "cart_id"}
    )
    contact = ContactFactory.create()
    first = enrol(journey, contact, key="A-1", cart_id="A-1")
    second = enrol(journey, contact, key="B-2", cart_id="B-2")
    tick(T0)
    EventFactory.create(
        contact=contact,
        type="checkout_started",
        occurred_at=T0 + MIN,
        properties={"cart_id": "B-2"},
    )
    waits_check(contact_ids=[contact.pk], event_types=["checkout_started"], now=T0 + MIN)
    assert fresh(first).step_id == "cart" and first.status == "active"
    assert [s for s, _, _ in ledger(second)] == ["cart", "went-on"]
    EventFactory.create(
        contact=contact,
        type="checkout_started",
        occurred_at=T0 + 2 * MIN,
        properties={"cart_id": "A-1"},
    )
    waits_check(contact_ids=[contact.pk], event_types=["checkout_started"], now=T0 + 2 * MIN)
    assert [s for s, _, _ in ledger(first)] == ["cart", "went-on"]


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_contact_waiting_for_an_event_advances_within_a_second_of_it(tmp_path: Path) -> None:
    journey = journey_of(
        _wait_for(match_key="cart_id"), reentry={"mode": "once_per_key", "key": "cart_id"}
    )
    contact_input, errors = contact_input_parse({"email": "zoe@example.com"})
    assert contact_input is not None and not errors
    [created] = events_ingest(
        [
            EventInput(
                client_id="seed",
                type="product_viewed",
                occurred_at=timezone.now(),
                contact=contact_input,
                properties={},
            )
        ],
        source="api",
    )
    from crm.models import Contact

    contact = Contact.objects.get(pk=created.contact_id)
    now = timezone.now()
    carts = {key: enrol(journey, contact, at=now, key=key, cart_id=key) for key in ("A-1", "B-2")}
    tick(now)

    def checkout(cart: str) -> float:
        started = time.monotonic()
        events_ingest(
            [
                EventInput(
                    client_id=f"checkout-{cart}",
                    type="checkout_started",
                    occurred_at=timezone.now(),
                    contact=contact_input,
                    properties={"cart_id": cart},
                )
            ],
            source="api",
        )
        wait_for(lambda: len(ledger(carts[cart])) == 2, timeout=60, what=f"cart {cart} to move on")
        return time.monotonic() - started

    with celery_worker(tmp_path=tmp_path, queues="evaluation"):
        cold = checkout("A-1")  # the worker's first task loads everything
        assert fresh(carts["B-2"]).step_id == "cart"  # the other cart still waits
        warm = checkout("B-2")
    print(f"event-to-step latency: cold {cold:.2f}s, warm {warm:.2f}s")
    assert [s for s, _, _ in ledger(carts["A-1"])] == ["cart", "went-on"]
    assert [s for s, _, _ in ledger(carts["B-2"])] == ["cart", "went-on"]
    assert warm < 1.0
