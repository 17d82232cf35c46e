"""A contact's journeys on its admin page (added by journeys; crm knows nothing of them),
read-only, each with a link to the path it took, for a marketer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

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


def test_the_contact_page_explain_and_version_pages_in_the_browser(
    live_server: Any, page: Any, settings: Any
) -> None:
    from django.contrib.auth.models import Group, User

    from journeys.models import Enrollment
    from journeys.services import journey_save
    from tests.journeys.helpers import example

    made = rows()
    edited = example()
    edited["steps"][0]["minutes"] = 60
    v2 = journey_save(edited, via="test").published
    assert v2 is not None
    Enrollment.objects.create(
        journey=made.journey, version=v2, contact=made.contacts[0], step_id="cool-off"
    )
    user = User.objects.create_user("mia", "mia@example.com", "correct-horse-42", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    contact_url = f"/admin/crm/contact/{made.contacts[0].pk}/change/"
    page.goto(f"{live_server.url}/admin/login/?next={contact_url}")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    inline = page.locator("#journey_enrollments-group")
    inline.wait_for()
    assert "Converted (reached the goal)" in inline.inner_text()
    screens = Path(settings.BASE_DIR) / "var" / "screens"
    screens.mkdir(parents=True, exist_ok=True)
    inline.screenshot(path=str(screens / "journey-contact-enrollments.png"))
    inline.locator("a", has_text="explain").first.click()
    page.wait_for_selector("#journey-explain")
    assert "went then" in page.inner_text("#journey-explain")
    page.screenshot(path=str(screens / "journey-explain.png"), full_page=True)

    page.goto(f"{live_server.url}/admin/journeys/journey/{made.journey.pk}/flow/")
    page.select_option("#id_version", "1")
    page.click(".journey-insight form button")
    page.wait_for_selector("svg.journey-flow")
    assert "v1: converted 1 / enrolled 6" in page.text_content("svg.journey-flow")
    page.screenshot(path=str(screens / "journey-flow-v1.png"), full_page=True)
