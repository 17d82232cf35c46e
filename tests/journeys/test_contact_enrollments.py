"""A contact's journeys on its admin page (added by journeys; crm knows nothing of them),
read-only, each with a link to the path it took, for a marketer."""

from __future__ import annotations

import pytest
from django.test import Client

from tests.journeys.insight_rows import rows

pytestmark = pytest.mark.django_db


def test_the_contact_page_lists_its_enrollments_with_a_link_to_explain(
    marketer_client: Client,
) -> None:
    made = rows()
    converted = made.contacts[0]
    page = marketer_client.get(f"/admin/crm/contact/{converted.pk}/change/").content.decode()
    assert "Journeys" in page
    assert "Browse follow-up" in page
    assert "Converted (reached the goal)" in page
    assert "goal order_completed" in page and "42.50" in page
    assert "sms-1" in page
    url = f"/admin/journeys/journey/{made.journey.pk}/explain/{converted.pk}/"
    assert f'href="{url}"' in page
    # Read-only: no inputs for enrollment fields, no delete box.
    assert "journey_enrollments-0-status" not in page
    assert "journey_enrollments-0-DELETE" not in page

    explained = marketer_client.get(url).content.decode()
    assert "went then" in explained
    assert "split arm A (weight 50)" in explained


def test_a_contact_without_enrollments_shows_none(marketer_client: Client) -> None:
    made = rows()
    from crm.models import Contact

    other = Contact.objects.create(email="quiet@example.com")
    page = marketer_client.get(f"/admin/crm/contact/{other.pk}/change/").content.decode()
    assert "Browse follow-up" not in page
    assert made.contacts


def test_the_explain_page_escapes_values_read_from_events(marketer_client: Client) -> None:
    from journeys.models import StepRun

    made = rows()
    run = StepRun.objects.get(enrollment=made.enrollments[0], step_id="bought")
    run.outcome["conditions"][0]["values"] = {"last product": "<img src=x onerror=alert(1)>"}
    run.save()
    url = f"/admin/journeys/journey/{made.journey.pk}/explain/{made.contacts[0].pk}/"
    page = marketer_client.get(url).content.decode()
    assert "<img src=x" not in page
    assert "last product = &lt;img src=x onerror=alert(1)&gt;" in page
