"""`journey_status` and `journeys status`: counts per status and per step from enrollment
and ledger rows, split arms compared like A/B arms, in a constant number of queries."""

from __future__ import annotations

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.models import Contact
from journeys.models import Enrollment
from journeys.reports import journey_status
from tests.journeys.insight_rows import rows

pytestmark = pytest.mark.django_db


def test_status_counts_each_status_and_each_step_from_the_rows() -> None:
    made = rows()
    out = StringIO()
    call_command("journeys", "status", "browse-follow-up", "--json", stdout=out)
    status = json.loads(out.getvalue())
    named = {key: status[key] for key in ("slug", "version", "enrolled", "active")}
    assert named == {"slug": "browse-follow-up", "version": 1, "enrolled": 6, "active": 2}
    assert (status["completed"], status["converted"], status["exited"]) == (1, 1, 1)
    assert status["failed"] == 1
    steps = {s["id"]: s for s in status["steps"]}
    assert [s["id"] for s in status["steps"]] == [
        "cool-off", "bought", "email-1", "ab", "sms-1", "done"
    ]  # fmt: skip
    assert {k: steps["cool-off"][k] for k in ("id", "type", "entered", "waiting", "done")} == {
        "id": "cool-off",
        "type": "wait",
        # 5 waited and moved on (their ledger rows); 1 waits there now, not yet recorded.
        "entered": 6,
        "waiting": 1,
        "done": 5,
    }
    assert (steps["email-1"]["entered"], steps["email-1"]["waiting"]) == (4, 1)
    assert (steps["email-1"]["done"], steps["email-1"]["failed"]) == (2, 1)
    assert (steps["ab"]["entered"], steps["sms-1"]["done"], steps["done"]["done"]) == (2, 1, 1)
    assert status["paths"]["bought"] == {"then": 4, "else": 1}
    assert status["paths"]["ab"] == {"arms[0]": 1, "holdout": 1}
    assert made.journey.slug == status["slug"]


def test_split_arms_are_reported_against_the_holdout() -> None:
    status = journey_status(rows().journey)
    arms = {arm["arm"]: arm for arm in status["splits"]["ab"]}
    assert list(arms) == ["arms[0]", "arms[1]", "holdout"]
    assert (arms["arms[0]"]["enrolled"], arms["arms[0]"]["converted"]) == (1, 1)
    assert arms["arms[0]"]["against"] == "holdout"
    assert arms["arms[0]"]["difference"] == pytest.approx(1.0)
    assert (arms["holdout"]["enrolled"], arms["holdout"]["converted"]) == (1, 0)
    assert arms["holdout"]["against"] is None
    assert arms["arms[1]"]["rate"] is None


def test_the_table_names_every_step_and_the_conversion_rate() -> None:
    rows()
    out = StringIO()
    call_command("journeys", "status", "browse-follow-up", stdout=out)
    text = out.getvalue()
    assert "6 enrolled, 2 active, 1 completed, 1 converted (16.7%)" in text
    assert "email-1" in text and "sms-1" in text
    assert "A (weight 50): 1 of 1 converted (100.0%), +100.0% vs holdout" in text


def test_status_takes_the_same_number_of_queries_whatever_the_rows() -> None:
    made = rows()
    with CaptureQueriesContext(connection) as few:
        journey_status(made.journey)
    version = made.journey.current_version
    assert version is not None
    for index in range(30):
        contact = Contact.objects.create(email=f"more{index}@example.com")
        Enrollment.objects.create(
            journey=made.journey, version=version, contact=contact, step_id="cool-off"
        )
    with CaptureQueriesContext(connection) as many:
        journey_status(made.journey)
    assert len(few) == len(many) <= 5
    assert journey_status(made.journey)["steps"][0]["waiting"] == 31


def test_an_unknown_slug_is_a_clear_error() -> None:
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="no journey with the slug 'nope'"):
        call_command("journeys", "status", "nope")
