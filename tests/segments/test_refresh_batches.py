"""A refresh in batches reads each batch's own events only (the counted-behaviour subquery is
narrowed to the batch's contacts), and still gives every contact the answer the whole
segment query gives."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
from django.utils import timezone

from crm.models import Contact
from segments.compiler import ContactRange, segment_queryset
from segments.models import Segment, SegmentMembership
from segments.services import segment_refresh
from tests.factories import ContactFactory, EventFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()


def behaviour(operator: str, count: int | None = None) -> dict[str, Any]:
    condition: dict[str, Any] = {
        "type": "behaviour",
        "event": "product_viewed",
        "operator": operator,
        "days": 7,
    }
    if count is not None:
        condition["count"] = count
    return {"op": "and", "conditions": [condition]}


def make_segment(definition: dict[str, Any]) -> Segment:
    segment = Segment(name="Viewers", slug="viewers", definition=definition)
    segment.full_clean()
    segment.save()
    return segment


def viewers(views: list[int]) -> list[Contact]:
    """One contact per entry, with that many product views this week (and an old one each,
    outside the window)."""
    contacts = []
    for times in views:
        contact = ContactFactory.create()
        EventFactory.create_batch(times, contact=contact, occurred_at=NOW - dt.timedelta(days=1))
        EventFactory.create(contact=contact, occurred_at=NOW - dt.timedelta(days=30))
        contacts.append(contact)
    return contacts


def current(segment: Segment) -> set[int]:
    return set(
        SegmentMembership.objects.filter(segment=segment, exited_at__isnull=True).values_list(
            "contact_id", flat=True
        )
    )


def whole_query(segment: Segment) -> set[int]:
    return set(segment_queryset(segment, now=NOW).values_list("id", flat=True))


@pytest.mark.parametrize(
    ("operator", "count"),
    [("at_least", 2), ("at_most", 1), ("exactly", 2), ("exactly", 0), ("none", None)],
)
def test_a_refresh_in_batches_of_two_gives_the_whole_querys_members(
    settings: Any, operator: str, count: int | None
) -> None:
    settings.SEGMENT_REFRESH_BATCH_SIZE = 2
    viewers([0, 3, 1, 2, 0, 2, 1])
    segment = make_segment(behaviour(operator, count))
    segment_refresh(segment=segment, now=NOW)
    assert current(segment) == whole_query(segment)
    assert current(segment)  # every case selects someone in this data


def test_an_incremental_refresh_of_scattered_contacts_gives_them_the_whole_querys_answer(
    settings: Any,
) -> None:
    settings.SEGMENT_REFRESH_BATCH_SIZE = 2
    contacts = viewers([3, 0, 1, 0, 2, 0, 1])
    segment = make_segment(behaviour("at_most", 1))
    asked = [contacts[0].pk, contacts[3].pk, contacts[4].pk, contacts[6].pk]
    result = segment_refresh(segment=segment, contact_ids=asked, now=NOW)
    assert result.entered_ids == [contacts[3].pk, contacts[6].pk]
    assert current(segment) == whole_query(segment) & set(asked)


def test_a_member_whose_views_fall_out_of_the_window_leaves_in_a_batched_refresh(
    settings: Any,
) -> None:
    settings.SEGMENT_REFRESH_BATCH_SIZE = 2
    stays, goes, _ = viewers([2, 2, 0])
    segment = make_segment(behaviour("at_least", 2))
    segment_refresh(segment=segment, now=NOW)
    assert current(segment) == {stays.pk, goes.pk}
    goes.events.update(occurred_at=NOW - dt.timedelta(days=20))
    result = segment_refresh(segment=segment, now=NOW + dt.timedelta(minutes=1))
    assert (result.entered_ids, result.exited_ids) == ([], [goes.pk])
    assert current(segment) == {stays.pk}


def test_a_last_batch_that_is_exactly_full_is_not_followed_by_an_empty_one(
    settings: Any,
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    settings.SEGMENT_REFRESH_BATCH_SIZE = 2
    viewers([2, 2, 2, 2])
    segment = make_segment(behaviour("at_least", 2))
    batches: list[int] = []
    segment_refresh(segment=segment, now=NOW, progress=lambda p: batches.append(p.checked))
    assert batches == [2, 4]
    assert len(current(segment)) == 4


def test_the_behaviour_subquery_reads_only_the_batchs_contacts() -> None:
    segment = Segment(name="Viewers", slug="viewers", definition=behaviour("at_least", 2))
    sql = str(segment_queryset(segment, now=NOW, within=ContactRange(100, 200)).query)
    subquery = sql[sql.index("(SELECT") :]
    assert 'U0."contact_id" > 100' in subquery
    assert 'U0."contact_id" <= 200' in subquery
