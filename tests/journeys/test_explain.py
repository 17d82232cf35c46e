"""`journeys explain SLUG CONTACT`: the path one contact took, each ledger row in order with
its time, and why (branch conditions with the contact's values, split arm, sends, waits)."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from tests.journeys.insight_rows import rows

pytestmark = pytest.mark.django_db


def _explain(contact: str) -> str:
    out = StringIO()
    call_command("journeys", "explain", "browse-follow-up", contact, stdout=out)
    return out.getvalue()


def test_explain_names_the_branch_conditions_with_the_contacts_values() -> None:
    rows()
    text = _explain("C0@example.com")
    assert "c0@example.com in browse-follow-up: 1 enrollment(s)" in text
    lines = text.splitlines()
    order = [line.split()[4] for line in lines if line.startswith("  ") and ". 2026" in line]
    assert order == ["cool-off", "bought", "email-1", "ab", "sms-1"]
    assert "went then" in text
    assert (
        "conditions[0]: no order_completed event in 24 hours: holds "
        "(order_completed events in the last 24 h = 0)"
    ) in text
    assert "split arm A (weight 50)" in text
    assert "sent campaign browse-abandonment by email, delivery 7: sent" in text
    assert "waited until 2026-03-01T13:00:00+00:00" in text
    assert "Converted (reached the goal) (goal order_completed), conversion value 42.50" in text


def test_explain_by_id_says_where_an_active_contact_is_and_until_when() -> None:
    made = rows()
    text = _explain(str(made.contacts[1].pk))
    assert "now at cool-off (wait), moves on at 2026-03-02 15:00:00 UTC (due now)" in text


def test_explain_shows_the_else_side_with_the_value_that_failed_it() -> None:
    rows()
    text = _explain("c3@example.com")
    assert "went else" in text
    assert "does not hold (order_completed events in the last 24 h = 2)" in text
    assert "exit step" in text


def test_explain_of_a_contact_never_enrolled_says_so_and_an_unknown_one_is_an_error() -> None:
    made = rows()
    from crm.models import Contact

    Contact.objects.create(email="new@example.com")
    assert "new@example.com never entered browse-follow-up" in _explain("new@example.com")
    with pytest.raises(CommandError, match=r"no contact with the id or email 'who@x\.org'"):
        _explain("who@x.org")
    assert made.contacts


def test_explain_gives_a_sends_delivery_status_as_it_is_now() -> None:
    from campaigns.models import Campaign, Delivery
    from journeys.models import StepRun

    made = rows()
    delivery = Delivery.objects.create(
        campaign=Campaign.objects.get(slug="browse-abandonment"),
        contact=made.contacts[0],
        occurrence="journey",
        channel="email",
        status=Delivery.Status.DELIVERED,
    )
    run = StepRun.objects.get(enrollment=made.enrollments[0], step_id="email-1")
    run.outcome = {**run.outcome, "delivery_id": delivery.pk}
    run.save()
    text = _explain("c0@example.com")
    assert f"delivery {delivery.pk}: sent (now delivered)" in text
