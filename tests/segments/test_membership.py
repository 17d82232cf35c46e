"""Segment membership: refreshes with entered/exited history, the membership_changed signal,
incremental refresh after events, merges, cycles, size snapshots and warnings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from crm.models import Contact
from crm.services.event_input import event_input_parse
from crm.services.events import events_ingest
from crm.services.merge import contact_merge
from segments.models import Segment, SegmentMembership, SegmentPendingContact, SegmentSizeSnapshot
from segments.selectors import segment_warnings, segments_depending_on_clock
from segments.services import segment_refresh, segments_refresh, segments_refresh_pending
from segments.signals import membership_changed
from tests.factories import ContactFactory, EventFactory

pytestmark = pytest.mark.django_db

FRANCE = {"op": "and", "conditions": [{"type": "country", "countries": ["FR"]}]}
VIEWED_TWICE = {
    "op": "and",
    "conditions": [
        {
            "type": "behaviour",
            "event": "product_viewed",
            "operator": "at_least",
            "count": 2,
            "days": 7,
        }
    ],
}


def make_segment(slug: str, definition: dict[str, Any], **extra: Any) -> Segment:
    segment = Segment(name=slug.title(), slug=slug, definition=definition, **extra)
    segment.full_clean()
    segment.save()
    return segment


@pytest.fixture
def signals() -> Iterator[list[dict[str, Any]]]:
    received: list[dict[str, Any]] = []

    def listen(sender: Any, **kwargs: Any) -> None:
        kwargs.pop("signal", None)
        received.append(kwargs)

    membership_changed.connect(listen, dispatch_uid="test-membership-listener")
    yield received
    membership_changed.disconnect(dispatch_uid="test-membership-listener")


@pytest.fixture
def eager_celery(settings: Any) -> None:
    """Tasks run in the test's process when enqueued (the receivers' drain task). Celery
    reads Django's settings live, so the settings fixture undoes this after the test."""
    settings.CELERY_TASK_ALWAYS_EAGER = True


def current(segment: Segment) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).values_list(
            "contact_id", flat=True
        )
    )


def test_a_refresh_enters_the_contacts_that_match(
    django_capture_on_commit_callbacks: Callable[..., Any], signals: list[dict[str, Any]]
) -> None:
    paris, berlin = ContactFactory.create(country="FR"), ContactFactory.create(country="DE")
    segment = make_segment("france", FRANCE)
    with django_capture_on_commit_callbacks(execute=True):
        result = segment_refresh(segment=segment)
    assert result.entered_ids == [paris.pk]
    assert result.exited_ids == []
    assert current(segment) == {paris.pk}
    assert berlin.pk not in current(segment)
    assert signals == [{"segment_id": segment.pk, "entered_ids": [paris.pk], "exited_ids": []}]


def test_a_second_refresh_with_nothing_changed_sends_nothing(
    django_capture_on_commit_callbacks: Callable[..., Any], signals: list[dict[str, Any]]
) -> None:
    ContactFactory.create(country="FR")
    segment = make_segment("france", FRANCE)
    segment_refresh(segment=segment)
    with django_capture_on_commit_callbacks(execute=True):
        result = segment_refresh(segment=segment)
    assert (result.entered_ids, result.exited_ids) == ([], [])
    assert signals == []


def test_leaving_closes_the_stay_and_coming_back_opens_a_new_one(
    django_capture_on_commit_callbacks: Callable[..., Any], signals: list[dict[str, Any]]
) -> None:
    contact = ContactFactory.create(country="FR")
    segment = make_segment("france", FRANCE)
    t1 = timezone.now()
    segment_refresh(segment=segment, now=t1)
    Contact.objects.filter(pk=contact.pk).update(country="DE")
    with django_capture_on_commit_callbacks(execute=True):
        left = segment_refresh(segment=segment, now=t1 + dt.timedelta(hours=1))
    Contact.objects.filter(pk=contact.pk).update(country="FR")
    with django_capture_on_commit_callbacks(execute=True):
        back = segment_refresh(segment=segment, now=t1 + dt.timedelta(hours=2))
    assert left.exited_ids == [contact.pk]
    assert back.entered_ids == [contact.pk]
    stays = list(
        SegmentMembership.objects.filter(segment=segment, contact=contact)
        .order_by("entered_at")
        .values_list("entered_at", "exited_at")
    )
    assert stays == [(t1, t1 + dt.timedelta(hours=1)), (t1 + dt.timedelta(hours=2), None)]
    assert signals == [
        {"segment_id": segment.pk, "entered_ids": [], "exited_ids": [contact.pk]},
        {"segment_id": segment.pk, "entered_ids": [contact.pk], "exited_ids": []},
    ]


def test_erased_contacts_leave(django_capture_on_commit_callbacks: Callable[..., Any]) -> None:
    contact = ContactFactory.create(country="FR")
    segment = make_segment("france", FRANCE)
    segment_refresh(segment=segment)
    Contact.objects.filter(pk=contact.pk).update(is_erased=True)
    assert segment_refresh(segment=segment).exited_ids == [contact.pk]


def test_the_database_keeps_one_current_stay_per_contact_and_segment() -> None:
    contact = ContactFactory.create()
    segment = make_segment("france", FRANCE)
    SegmentMembership.objects.create(segment=segment, contact=contact, exited_at=timezone.now())
    SegmentMembership.objects.create(segment=segment, contact=contact)
    with pytest.raises(IntegrityError), transaction.atomic():
        SegmentMembership.objects.create(segment=segment, contact=contact)


def test_a_refresh_in_batches_sends_one_signal_per_batch_that_changed(
    settings: Any,
    django_capture_on_commit_callbacks: Callable[..., Any],
    signals: list[dict[str, Any]],
) -> None:
    settings.SEGMENT_REFRESH_BATCH_SIZE = 2
    contacts = [ContactFactory.create(country="FR") for _ in range(5)]
    segment = make_segment("france", FRANCE)
    with django_capture_on_commit_callbacks(execute=True):
        result = segment_refresh(segment=segment)
    ids = [contact.pk for contact in contacts]
    assert result.entered_ids == ids
    assert [payload["entered_ids"] for payload in signals] == [ids[0:2], ids[2:4], ids[4:5]]


def test_an_incremental_refresh_looks_only_at_the_given_contacts() -> None:
    touched, untouched = ContactFactory.create(country="FR"), ContactFactory.create(country="FR")
    segment = make_segment("france", FRANCE)
    result = segment_refresh(segment=segment, contact_ids=[touched.pk])
    assert result.entered_ids == [touched.pk]
    assert current(segment) == {touched.pk}
    assert untouched.pk not in current(segment)


def test_new_events_refresh_the_contacts_they_touch(
    django_capture_on_commit_callbacks: Callable[..., Any],
    eager_celery: None,
    signals: list[dict[str, Any]],
) -> None:
    ada = ContactFactory.create(email="ada@example.com")
    segment = make_segment("viewed-twice", VIEWED_TWICE)
    segment_refresh(segment=segment)
    assert current(segment) == set()
    now = timezone.now()
    inputs = []
    for minutes in (5, 10):
        parsed, errors = event_input_parse(
            {
                "type": "product_viewed",
                "occurred_at": (now - dt.timedelta(minutes=minutes)).isoformat(),
                "contact": {"email": "ada@example.com"},
            }
        )
        assert errors == []
        inputs.append(parsed)
    with django_capture_on_commit_callbacks(execute=True):
        events_ingest(inputs, source="api")  # type: ignore[arg-type]
    assert current(segment) == {ada.pk}
    assert signals == [{"segment_id": segment.pk, "entered_ids": [ada.pk], "exited_ids": []}]
    assert not SegmentPendingContact.objects.exists()


def test_queued_contacts_are_drained_in_one_refresh() -> None:
    a, b = ContactFactory.create(), ContactFactory.create()
    segment = make_segment("viewed-twice", VIEWED_TWICE)
    for contact in (a, b):
        EventFactory.create_batch(2, contact=contact)
        SegmentPendingContact.objects.create(contact_id=contact.pk)
    assert segments_refresh_pending() == 2
    assert current(segment) == {a.pk, b.pk}
    assert not SegmentPendingContact.objects.exists()


def test_a_merge_leaves_the_survivor_one_current_stay_and_keeps_the_duplicates_as_history() -> None:
    survivor, duplicate = (
        ContactFactory.create(country="FR"),
        ContactFactory.create(country="FR", email=None),
    )
    segment = make_segment("france", FRANCE)
    segment_refresh(segment=segment)
    contact_merge(survivor=survivor, duplicate=duplicate, merged_by="test")
    rows = list(
        SegmentMembership.objects.filter(segment=segment).values_list("contact_id", "exited_at")
    )
    assert len(rows) == 2
    assert {contact_id for contact_id, _ in rows} == {survivor.pk}
    assert sum(1 for _, exited in rows if exited is None) == 1


def test_a_segment_refers_to_another_by_slug_and_refreshes_after_it() -> None:
    paris = ContactFactory.create(country="FR", attributes={"plan": "pro"})
    ContactFactory.create(country="FR")
    france = make_segment("france", FRANCE)
    pro_france = make_segment(
        "pro-france",
        {
            "op": "and",
            "conditions": [
                {"type": "segment", "segment": "france", "member": True},
                {
                    "type": "attribute",
                    "field": "attributes.plan",
                    "operator": "equals",
                    "value": "pro",
                },
            ],
        },
    )
    results = segments_refresh(segments=[france])
    assert list(results) == ["france", "pro-france"]
    assert current(pro_france) == {paris.pk}


def test_a_cycle_of_memberships_is_rejected_naming_the_cycle() -> None:
    make_segment("a", {"op": "and", "conditions": []})
    make_segment(
        "b", {"op": "and", "conditions": [{"type": "segment", "segment": "a", "member": True}]}
    )
    a = Segment.objects.get(slug="a")
    a.definition = {
        "op": "and",
        "conditions": [{"type": "segment", "segment": "b", "member": False}],
    }
    with pytest.raises(ValidationError) as caught:
        a.full_clean()
    assert caught.value.message_dict["definition"] == [
        "segment memberships form a cycle: a → b → a"
    ]


def test_a_segment_cannot_refer_to_itself_or_to_a_missing_segment() -> None:
    segment = Segment(
        name="Me",
        slug="me",
        definition={
            "op": "or",
            "conditions": [
                {"type": "segment", "segment": "ghost", "member": True},
                {"type": "segment", "segment": "me", "member": True},
            ],
        },
    )
    with pytest.raises(ValidationError) as caught:
        segment.full_clean()
    assert caught.value.message_dict["definition"] == [
        "member-of-segment condition names 'ghost', which is not a segment",
        "segment 'me' cannot be defined by membership of itself",
    ]


def test_clean_stores_the_normalised_definition() -> None:
    segment = make_segment(
        "fr", {"op": "and", "conditions": [{"type": "country", "countries": "fr, de"}]}
    )
    assert segment.definition == {
        "op": "and",
        "conditions": [{"type": "country", "operator": "in", "countries": ["FR", "DE"]}],
    }


def test_a_refresh_records_the_size_and_one_snapshot_per_day() -> None:
    ContactFactory.create(country="FR")
    segment = make_segment("france", FRANCE)
    segment_refresh(segment=segment)
    ContactFactory.create(country="FR")
    segment_refresh(segment=segment)
    segment.refresh_from_db()
    assert segment.size == 2
    assert segment.last_refreshed_at is not None
    assert list(
        SegmentSizeSnapshot.objects.filter(segment=segment).values_list("date", "size")
    ) == [(timezone.now().date(), 2)]


def test_a_segment_below_its_minimum_size_is_too_small_to_act_on() -> None:
    ContactFactory.create(country="FR")
    segment = make_segment("france", FRANCE, min_size=5)
    segment_refresh(segment=segment)
    assert [w.message for w in segment_warnings(segment=segment)] == [
        "too small to act on: 1 members, below the minimum of 5"
    ]


def test_overlapping_segments_are_flagged() -> None:
    for _ in range(10):
        ContactFactory.create(country="FR", timezone="Europe/Paris")
    ContactFactory.create(country="DE", timezone="Europe/Paris")
    france = make_segment("france", FRANCE, min_size=1)
    paris = make_segment(
        "paris-time",
        {"op": "and", "conditions": [{"type": "timezone", "zones": ["Europe/Paris"]}]},
        min_size=1,
    )
    segments_refresh()
    france.refresh_from_db()
    paris.refresh_from_db()
    # All of France is on Paris time; 10 of the 11 on Paris time (91%) are in France.
    assert [w.message for w in segment_warnings(segment=france)] == [
        "100% of its members are also in 'Paris-Time'"
    ]
    assert [w.message for w in segment_warnings(segment=paris)] == [
        "91% of its members are also in 'France'"
    ]


def test_only_segments_that_move_with_the_clock_are_refreshed_on_schedule() -> None:
    make_segment("france", FRANCE)
    make_segment("viewed-twice", VIEWED_TWICE)
    make_segment(
        "viewers-in-france",
        {
            "op": "and",
            "conditions": [{"type": "segment", "segment": "viewed-twice", "member": True}],
        },
    )
    assert [s.slug for s in segments_depending_on_clock()] == ["viewed-twice", "viewers-in-france"]


def test_inactive_segments_are_not_refreshed() -> None:
    ContactFactory.create(country="FR")
    make_segment("france", FRANCE, is_active=False)
    assert segments_refresh() == {}
