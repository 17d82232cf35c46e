"""The claim: due rows only, held by a lease; a stale lease advances nothing; each step runs
once however often the same ids are advanced."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import connection, connections

from journeys.engine import LEASE, claim_lease, enrollments_advance, enrollments_claim
from journeys.engine.claim import claim_statement
from journeys.models import Enrollment, StepRun
from tests.factories import ContactFactory
from tests.journeys.engine_helpers import T0, enrol, fresh, journey_of, tick

MIN = dt.timedelta(minutes=1)
NOTE = {"id": "note", "type": "action", "action": "set_attribute", "attribute": "n", "value": "1"}
BRANCH = {
    "id": "check",
    "type": "branch",
    "conditions": [{"id": "event_absent", "event": "order_completed", "hours": 24}],
    "then": [NOTE],
}


@pytest.mark.django_db
def test_only_due_rows_of_active_journeys_are_claimed_and_held_by_the_lease() -> None:
    journey = journey_of({"id": "w", "type": "wait", "minutes": 5}, NOTE)
    due = enrol(journey, ContactFactory.create(), at=T0)
    later = enrol(journey, ContactFactory.create(), at=T0 + MIN)
    lease = claim_lease(T0)
    assert enrollments_claim(now=T0, limit=10, lease=lease) == [due.pk]
    assert fresh(due).due_at == lease == T0 + LEASE
    assert enrollments_claim(now=T0 + MIN, limit=10) == [later.pk]


@pytest.mark.django_db
def test_advancing_with_a_lease_that_is_not_the_rows_does_nothing() -> None:
    journey = journey_of(NOTE)
    enrollment = enrol(journey, ContactFactory.create())
    lease = claim_lease(T0)
    [pk] = enrollments_claim(now=T0, limit=10, lease=lease)
    # The lease ran out (the worker stalled) and another worker claimed the row again.
    again = claim_lease(lease)
    assert enrollments_claim(now=lease, limit=10, lease=again) == [pk]
    assert enrollments_advance([pk], lease=lease, now=lease).enrollments == 0
    assert fresh(enrollment).status == Enrollment.Status.ACTIVE
    enrollments_advance([pk], lease=again, now=lease)
    assert fresh(enrollment).status == Enrollment.Status.COMPLETED
    assert StepRun.objects.count() == 1


@pytest.mark.django_db
def test_the_same_ids_advanced_twice_run_each_step_once() -> None:
    journey = journey_of(BRANCH, {"id": "w", "type": "wait", "minutes": 5})
    enrollments = [enrol(journey, c) for c in ContactFactory.create_batch(20)]
    lease = claim_lease(T0)
    ids = enrollments_claim(now=T0, limit=100, lease=lease)
    first = enrollments_advance(ids, lease=lease, now=T0)
    second = enrollments_advance(ids, lease=lease, now=T0)
    assert enrollments_claim(now=T0, limit=100) == []  # a second claimer finds nothing due
    assert first.steps == 40 and second.steps == 0
    assert StepRun.objects.count() == 40
    assert all(fresh(e).step_id == "w" and e.sequence == 2 for e in enrollments)
    tick(T0 + 5 * MIN)
    tick(T0 + 5 * MIN)
    assert StepRun.objects.count() == 60
    assert Enrollment.objects.filter(status="completed").count() == 20


@pytest.mark.django_db(transaction=True)
def test_two_claims_on_postgresql_get_disjoint_rows() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("FOR UPDATE SKIP LOCKED is PostgreSQL's")
    journey = journey_of(NOTE)
    for contact in ContactFactory.create_batch(200):
        enrol(journey, contact)
    got: list[list[int]] = []
    barrier = threading.Barrier(2)

    def claim(offset: int) -> None:
        try:
            barrier.wait()
            got.append(enrollments_claim(now=T0, limit=150, lease=claim_lease(T0) + offset * MIN))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    first, second = got
    assert not set(first) & set(second)
    assert len(first) + len(second) == 200


@pytest.mark.django_db
def test_the_claim_walks_the_due_index_among_many_waiting_rows() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("EXPLAIN output is PostgreSQL's")
    journey = journey_of(NOTE)
    contact = ContactFactory.create()
    version = journey.current_version
    assert version is not None
    Enrollment.objects.bulk_create(
        Enrollment(
            journey=journey,
            version=version,
            contact=contact,
            entry_key=f"k{n}",
            step_id="note",
            # A few are due; the rest wait days ahead, as a million waiting contacts do.
            due_at=T0 - MIN if n < 10 else T0 + n * MIN,
        )
        for n in range(20_000)
    )
    sql, params = claim_statement(now=T0, limit=500, lease=claim_lease(T0))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE journeys_enrollment")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "journeys_enrol_due_idx" in plan, plan
    assert len(enrollments_claim(now=T0, limit=500)) == 10
