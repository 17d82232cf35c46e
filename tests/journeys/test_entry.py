"""Contacts enter a journey set-based, with re-entry enforced by the insert itself."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from crm.models import Contact
from journeys.entry import (
    SKIP_DISABLED,
    SKIP_NO_CONTACT,
    SKIP_NO_KEY,
    SKIP_PAUSED,
    SKIP_REENTRY,
    SKIP_TWICE,
    enrollments_start,
)
from journeys.models import Enrollment, Journey
from journeys.services import journey_save
from tests.factories import ContactFactory


def make_journey(slug: str = "follow-up", **overrides: Any) -> Journey:
    data: dict[str, Any] = {
        "slug": slug,
        "name": slug.replace("-", " ").title(),
        "enabled": True,
        "reentry": {"mode": "once_ever"},
        "steps": [
            {"id": "cool-off", "type": "wait", "minutes": 240},
            {"id": "done", "type": "exit"},
        ],
        **overrides,
    }
    return journey_save(data, via="test").journey


@pytest.mark.django_db
def test_a_new_enrollment_is_active_at_the_first_step_and_due_now() -> None:
    journey = make_journey()
    contact = ContactFactory.create()
    now = timezone.now()
    result = enrollments_start(
        journey=journey, entrants=[(contact.pk, {"cart_id": "c1"})], now=now, source="test"
    )
    assert result.created == 1 and not result.skipped
    enrollment = Enrollment.objects.get(pk=result.created_ids[0])
    assert enrollment.contact_id == contact.pk
    assert enrollment.status == Enrollment.Status.ACTIVE
    assert enrollment.step_id == "cool-off"
    assert enrollment.sequence == 0
    assert enrollment.due_at == now
    assert enrollment.step_started_at == now
    assert enrollment.entered_at == now
    assert enrollment.version_id == journey.current_version_id
    assert enrollment.entry_key == ""
    assert enrollment.awaiting_event == ""
    assert enrollment.entry_properties == {"cart_id": "c1"}


@pytest.mark.django_db
def test_once_ever_lets_a_contact_in_once_even_after_it_finished() -> None:
    journey = make_journey()
    contact = ContactFactory.create()
    enrollments_start(journey=journey, entrants=[(contact.pk, {})], source="test")
    Enrollment.objects.update(status=Enrollment.Status.COMPLETED, due_at=None)
    again = enrollments_start(journey=journey, entrants=[(contact.pk, {})], source="test")
    assert again.created == 0
    assert again.skipped == {SKIP_REENTRY: 1}
    assert Enrollment.objects.count() == 1


@pytest.mark.django_db
def test_once_per_days_lets_a_contact_back_in_after_the_days() -> None:
    journey = make_journey(reentry={"mode": "once_per_days", "days": 7})
    contact = ContactFactory.create()
    start = timezone.now() - dt.timedelta(days=10)
    enrollments_start(journey=journey, entrants=[(contact.pk, {})], now=start, source="test")
    Enrollment.objects.update(status=Enrollment.Status.COMPLETED, due_at=None)
    # Five days after the first entry: too soon.
    too_soon = enrollments_start(
        journey=journey,
        entrants=[(contact.pk, {})],
        now=start + dt.timedelta(days=5),
        source="test",
    )
    assert too_soon.skipped == {SKIP_REENTRY: 1}
    later = enrollments_start(journey=journey, entrants=[(contact.pk, {})], source="test")
    assert later.created == 1
    assert Enrollment.objects.filter(contact=contact).count() == 2


@pytest.mark.django_db
def test_once_per_days_never_adds_a_second_active_enrollment() -> None:
    journey = make_journey(reentry={"mode": "once_per_days", "days": 1})
    contact = ContactFactory.create()
    old = timezone.now() - dt.timedelta(days=3)
    enrollments_start(journey=journey, entrants=[(contact.pk, {})], now=old, source="test")
    still_in = enrollments_start(journey=journey, entrants=[(contact.pk, {})], source="test")
    assert still_in.skipped == {SKIP_REENTRY: 1}
    assert Enrollment.objects.count() == 1


@pytest.mark.django_db
def test_once_per_key_enrolls_once_per_cart_and_skips_an_entrant_without_one() -> None:
    journey = make_journey(reentry={"mode": "once_per_key", "key": "cart_id"})
    ada, bob = ContactFactory.create_batch(2)
    result = enrollments_start(
        journey=journey,
        entrants=[
            (ada.pk, {"cart_id": "A1"}),
            (ada.pk, {"cart_id": "A2"}),
            (ada.pk, {"cart_id": "A1"}),
            (bob.pk, {"product_id": "SKU-1"}),
            (bob.pk, {"cart_id": 88}),
        ],
        source="test",
    )
    assert result.created == 3
    assert result.skipped == {SKIP_TWICE: 1, SKIP_NO_KEY: 1}
    keys = set(Enrollment.objects.values_list("contact_id", "entry_key"))
    assert keys == {(ada.pk, "A1"), (ada.pk, "A2"), (bob.pk, "88")}
    # A finished cart stays finished: once per key, ever.
    Enrollment.objects.filter(entry_key="A1").update(status=Enrollment.Status.COMPLETED)
    again = enrollments_start(journey=journey, entrants=[(ada.pk, {"cart_id": "A1"})], source="t")
    assert again.skipped == {SKIP_REENTRY: 1}


@pytest.mark.django_db
def test_a_disabled_or_paused_journey_takes_no_one() -> None:
    contact = ContactFactory.create()
    off = make_journey("off", enabled=False)
    paused = make_journey("held", status="paused")
    assert enrollments_start(journey=off, entrants=[(contact.pk, {})], source="t").skipped == {
        SKIP_DISABLED: 1
    }
    held = enrollments_start(journey=paused, entrants=[(contact.pk, {})], source="t")
    assert held.skipped == {SKIP_PAUSED: 1}
    assert not Enrollment.objects.exists()


@pytest.mark.django_db
def test_an_erased_or_unknown_contact_is_skipped_with_its_reason() -> None:
    journey = make_journey()
    erased = ContactFactory.create(is_erased=True)
    kept = ContactFactory.create()
    result = enrollments_start(
        journey=journey,
        entrants=[(erased.pk, {}), (kept.pk + 1000, {}), (kept.pk, {})],
        source="test",
    )
    assert result.created == 1
    assert result.skipped == {SKIP_NO_CONTACT: 2}


@pytest.mark.django_db
def test_a_queryset_enters_in_chunks_each_contact_once(
    monkeypatch: pytest.MonkeyPatch, django_assert_max_num_queries: Any
) -> None:
    import journeys.entry

    monkeypatch.setattr(journeys.entry, "CHUNK", 7)
    journey = make_journey()
    contacts = ContactFactory.create_batch(30)
    ContactFactory.create(is_erased=True)
    already = contacts[0]
    enrollments_start(journey=journey, entrants=[(already.pk, {})], source="test")
    # 5 chunks of 7 ids (2 queries each: the range's edge, the insert) and a few fixed ones.
    with django_assert_max_num_queries(20):
        result = enrollments_start(
            journey=journey, entrants=Contact.objects.all(), source="segment"
        )
    assert result.created == 29
    assert result.skipped == {SKIP_REENTRY: 1, SKIP_NO_CONTACT: 1}
    assert sorted(Enrollment.objects.values_list("contact_id", flat=True)) == sorted(
        c.pk for c in contacts
    )


@pytest.mark.django_db
def test_a_start_asks_the_engine_to_advance_after_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    journey = make_journey()
    contact = ContactFactory.create()
    with django_capture_on_commit_callbacks() as callbacks:
        enrollments_start(journey=journey, entrants=[(contact.pk, {})], source="test")
    assert len(callbacks) == 1
    with django_capture_on_commit_callbacks() as none:
        enrollments_start(journey=journey, entrants=[(contact.pk, {})], source="test")
    assert none == []


@pytest.mark.django_db(transaction=True)
def test_two_concurrent_starts_of_one_contact_make_one_enrollment() -> None:
    import threading
    import time

    from django.db import connection, transaction

    journey = make_journey()
    contact = ContactFactory.create()
    inserted = threading.Event()
    results: dict[str, int] = {}

    def first() -> None:
        try:
            with transaction.atomic():
                results["first"] = enrollments_start(
                    journey=journey, entrants=[(contact.pk, {})], source="a"
                ).created
                inserted.set()
                # Still uncommitted while the second start runs into the same row.
                time.sleep(0.5)
        finally:
            inserted.set()
            connection.close()

    def second() -> None:
        try:
            inserted.wait(10)
            results["second"] = enrollments_start(
                journey=journey, entrants=[(contact.pk, {})], source="b"
            ).created
        finally:
            connection.close()

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {"first": 1, "second": 0}
    assert Enrollment.objects.filter(contact=contact).count() == 1
