"""A marketer (not a superuser) sees journeys in admin, their steps as rows and as YAML and
the version history, pauses one, and only reads what the system writes."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from config.marketers import MARKETERS_GROUP
from journeys.models import Journey
from journeys.services import journey_save
from tests.journeys.helpers import example, make_example_campaigns
from tests.journeys.test_editor import posted

pytestmark = pytest.mark.django_db


@pytest.fixture
def marketer(client: Client) -> Client:
    user = User.objects.create_user("mia", "mia@example.com", "pw-not-used", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETERS_GROUP))
    client.force_login(user)
    return client


@pytest.fixture
def journey() -> Journey:
    make_example_campaigns()
    journey_save(example(), via="test")
    edited = example()
    edited["steps"][0]["minutes"] = 60
    return journey_save(edited, via="test").journey


def test_the_list_shows_status_version_and_enabled(marketer: Client, journey: Journey) -> None:
    page = marketer.get("/admin/journeys/journey/").content.decode()
    assert "Browse follow-up" in page
    assert "v2" in page
    assert "Active" in page


def test_the_change_page_shows_the_steps_as_rows_and_yaml_and_every_version(
    marketer: Client, journey: Journey
) -> None:
    page = marketer.get(f"/admin/journeys/journey/{journey.pk}/change/").content.decode()
    assert posted(page)["steps-0-minutes"] == "60"
    assert "{id: cool-off, type: wait, minutes: 60}" in page  # the YAML fallback
    assert "version history" in page.lower()
    assert "{id: cool-off, type: wait, minutes: 240}" in page  # version 1


def test_a_marketer_pauses_a_journey(marketer: Client, journey: Journey) -> None:
    url = f"/admin/journeys/journey/{journey.pk}/change/"
    response = marketer.post(url, posted(marketer.get(url).content.decode(), status="paused"))
    assert response.status_code == 302
    journey.refresh_from_db()
    assert journey.status == Journey.Status.PAUSED
    assert journey.current_version is not None
    assert journey.current_version.number == 2


@pytest.mark.parametrize("model", ["journeyversion", "enrollment", "steprun"])
def test_system_written_records_are_read_only(marketer: Client, model: str) -> None:
    assert marketer.get(f"/admin/journeys/{model}/").status_code == 200
    assert marketer.get(f"/admin/journeys/{model}/add/").status_code == 403
