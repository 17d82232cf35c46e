"""Every contact entering a journey's entry segment enters the journey, set-based."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Contact
from journeys.models import Enrollment
from segments.models import Segment
from segments.services import segment_refresh
from tests.factories import ContactFactory
from tests.journeys.test_entry import make_journey

FRANCE = {"op": "and", "conditions": [{"type": "country", "operator": "in", "countries": ["FR"]}]}


def _contacts(count: int, country: str) -> None:
    start = Contact.objects.count()
    Contact.objects.bulk_create(
        Contact(email=f"p{start + n}@example.com", country=country) for n in range(count)
    )


@pytest.mark.django_db
def test_ten_thousand_contacts_entering_a_segment_enter_once_with_constant_queries(
    settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.SEGMENT_REFRESH_BATCH_SIZE = 20_000  # one refresh batch: one announcement
    segment = Segment.objects.create(name="France", slug="france", definition=FRANCE)
    make_journey(entry_segment="france")
    _contacts(10, "FR")
    with (
        CaptureQueriesContext(connection) as ten,
        django_capture_on_commit_callbacks(execute=True),
    ):
        segment_refresh(segment=segment)
    assert Enrollment.objects.count() == 10
    _contacts(10_000, "FR")
    _contacts(5, "DE")
    with (
        CaptureQueriesContext(connection) as queries,
        django_capture_on_commit_callbacks(execute=True),
    ):
        result = segment_refresh(segment=segment)
    assert result.entered == 10_000
    mine = [q["sql"] for q in queries if "journeys_" in q["sql"]]
    mine_for_ten = [q["sql"] for q in ten if "journeys_" in q["sql"]]
    print(f"journey queries: {len(mine_for_ten)} for 10 contacts entering, {len(mine)} for 10,000")
    # Two chunks of 5,000, one INSERT … SELECT each; the rest as for the first ten.
    assert len([sql for sql in mine if sql.startswith("INSERT")]) == 2
    assert len(mine) == len(mine_for_ten) + 1
    assert Enrollment.objects.count() == 10_010
    assert Enrollment.objects.values("contact").distinct().count() == 10_010
    assert not Enrollment.objects.filter(contact__country="DE").exists()


@pytest.mark.django_db
def test_members_from_before_the_journey_was_enabled_do_not_flood_in(
    django_capture_on_commit_callbacks: Any,
) -> None:
    segment = Segment.objects.create(name="France", slug="france", definition=FRANCE)
    journey = make_journey(entry_segment="france", enabled=False)
    early = ContactFactory.create(country="FR")
    with django_capture_on_commit_callbacks(execute=True):
        segment_refresh(segment=segment)
    journey.enabled = True
    journey.save(update_fields=["enabled"])
    late = ContactFactory.create(country="FR")
    with django_capture_on_commit_callbacks(execute=True):
        segment_refresh(segment=segment)
    assert list(Enrollment.objects.values_list("contact_id", flat=True)) == [late.pk]
    assert early.pk != late.pk


@pytest.mark.django_db
def test_a_contact_leaving_and_entering_again_follows_the_reentry_policy(
    django_capture_on_commit_callbacks: Any,
) -> None:
    segment = Segment.objects.create(name="France", slug="france", definition=FRANCE)
    make_journey(entry_segment="france")
    contact = ContactFactory.create(country="FR")
    for country in ("FR", "DE", "FR"):
        Contact.objects.filter(pk=contact.pk).update(country=country)
        with django_capture_on_commit_callbacks(execute=True):
            segment_refresh(segment=segment)
    assert Enrollment.objects.filter(contact=contact).count() == 1
