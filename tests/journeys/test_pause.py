"""Pause holds a journey's contacts in place (the due query no longer selects them) and
resume lets them carry on, from the change page's buttons and the list actions alike, for a
marketer who is not a superuser."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.test import Client
from django.utils import timezone

from journeys.models import Enrollment, Journey
from tests.journeys.insight_rows import rows

pytestmark = pytest.mark.django_db


def _due_ids() -> set[int]:
    now = timezone.now()
    return set(
        Enrollment.objects.filter(
            status="active", due_at__lte=now, journey__status="active"
        ).values_list("pk", flat=True)
    )


def _messages(response: object) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]  # type: ignore[attr-defined]


def test_the_pause_button_holds_contacts_and_resume_lets_the_due_ones_run(
    marketer_client: Client,
) -> None:
    made = rows()
    # Both active rows are due now (their due time has passed).
    Enrollment.objects.filter(status="active").update(due_at=timezone.now() - dt.timedelta(1))
    assert len(_due_ids()) == 2
    base = f"/admin/journeys/journey/{made.journey.pk}"
    response = marketer_client.post(f"{base}/pause/", follow=True)
    assert response.redirect_chain[-1][0] == f"{base}/change/"
    assert "1 journey(s) paused: 2 contact(s) held at their steps until resumed." in _messages(
        response
    )
    made.journey.refresh_from_db()
    assert made.journey.status == Journey.Status.PAUSED
    assert _due_ids() == set()
    page = response.content.decode()
    assert "Paused</strong>: 2 contacts held at their steps" in page
    assert 'name="_resume"' in page

    response = marketer_client.post(f"{base}/resume/", follow=True)
    assert "1 journey(s) resumed: 2 contact(s) carry on; 2 due now run at once." in _messages(
        response
    )
    assert len(_due_ids()) == 2
    # Held in place: nobody moved while paused.
    assert set(Enrollment.objects.filter(status="active").values_list("step_id", flat=True)) == {
        "cool-off",
        "email-1",
    }


def test_pause_is_a_post_only_change(marketer_client: Client) -> None:
    made = rows()
    response = marketer_client.get(f"/admin/journeys/journey/{made.journey.pk}/pause/")
    assert response.status_code == 405
    made.journey.refresh_from_db()
    assert made.journey.status == Journey.Status.ACTIVE


def test_a_staff_user_without_change_permission_cannot_pause(client: Client) -> None:
    from django.contrib.auth.models import Permission, User

    made = rows()
    viewer = User.objects.create_user("vic", "vic@example.com", "x", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_journey"))
    client.force_login(viewer)
    response = client.post(f"/admin/journeys/journey/{made.journey.pk}/pause/")
    assert response.status_code == 403
    made.journey.refresh_from_db()
    assert made.journey.status == Journey.Status.ACTIVE


def test_the_list_actions_pause_and_resume_the_selected_journeys(
    marketer_client: Client,
) -> None:
    made = rows()
    response = marketer_client.post(
        "/admin/journeys/journey/",
        {"action": "pause_selected", "_selected_action": [made.journey.pk]},
        follow=True,
    )
    assert "1 journey(s) paused: 2 contact(s) held at their steps until resumed." in _messages(
        response
    )
    assert Journey.objects.get().status == Journey.Status.PAUSED
    response = marketer_client.post(
        "/admin/journeys/journey/",
        {"action": "pause_selected", "_selected_action": [made.journey.pk]},
        follow=True,
    )
    assert "Nothing to pause." in _messages(response)
    marketer_client.post(
        "/admin/journeys/journey/",
        {"action": "resume_selected", "_selected_action": [made.journey.pk]},
    )
    assert Journey.objects.get().status == Journey.Status.ACTIVE
