"""A marketer builds the documentation's browse-follow-up journey in a real chromium, from
rows only (no JSON or YAML typed), sees a wrong wait named by its path beside the field,
fixes it and saves: the published version is the YAML example's."""

from __future__ import annotations

from typing import Any

import pytest

from journeys.models import Journey
from journeys.services import journey_save
from journeys.validation import journey_validate
from tests.config.test_csp import SCREENS, Violations, log_in, marketer, screenshot
from tests.journeys.helpers import example, make_example_campaigns

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def add_step(page: Any, list_prefix: str, step_type: str) -> None:
    """The "add step here" control under a list; the page comes back with the new row."""
    page.select_option(f"#id_{list_prefix}-new_type", step_type)
    with page.expect_navigation():
        page.click(f'button[name="_journey_add"][value="{list_prefix}"]')


def field_errors(page: Any, path: str) -> str:
    return str(page.locator(f'.journey-field[data-path="{path}"] .errorlist').inner_text())


def test_a_marketer_builds_the_example_journey_from_rows(live_server: Any, page: Any) -> None:
    make_example_campaigns()
    violations = Violations(page)
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, marketer())
    page.goto(f"{live_server.url}/admin/journeys/journey/add/")
    page.fill("#id_name", "Browse follow-up")
    page.fill("#id_slug", "browse-follow-up")
    page.check("#id_enabled")
    page.select_option("#id_reentry_mode", "once_per_days")
    page.fill("#id_reentry_days", "7")
    page.fill("#id_goal_event", "order_completed")
    page.fill("#id_goal_within_days", "7")

    add_step(page, "steps", "wait")
    assert page.input_value("#id_steps-0-id") == "wait-1"  # a suggested id
    page.fill("#id_steps-0-id", "cool-off")
    page.fill("#id_steps-0-minutes", "0")  # wrong: a wait of 0
    add_step(page, "steps", "branch")
    page.fill("#id_steps-1-id", "bought")
    # The trigger rule editor's condition rows, in the page (rule_editor.js).
    page.click("#steps-1-conditions-editor button.rule-add")
    page.select_option("#id_steps-1-conditions-0-type", "event_absent")
    page.fill("#id_steps-1-conditions-0-event", "order_completed")
    page.fill("#id_steps-1-conditions-0-hours", "24")

    add_step(page, "steps-1-then", "send")
    # The page comes back at the new step, its id ready to rename (editor.js).
    assert page.evaluate("document.activeElement.id") == "id_steps-1-then-0-id"
    page.fill("#id_steps-1-then-0-id", "email-1")
    page.select_option("#id_steps-1-then-0-campaign", "browse-abandonment")
    add_step(page, "steps-1-then", "wait")
    page.fill("#id_steps-1-then-1-id", "wait-day")
    page.fill("#id_steps-1-then-1-days", "1")
    add_step(page, "steps-1-then", "send")
    page.fill("#id_steps-1-then-2-id", "sms-1")
    page.select_option("#id_steps-1-then-2-campaign", "win-back-sms")
    page.select_option("#id_steps-1-then-2-fallback_campaign", "win-back-email")
    add_step(page, "steps-1-else", "wait")
    # Changing a step's type shows the new type's fields at once (editor.js).
    with page.expect_navigation():
        page.select_option("#id_steps-1-else-0-type", "exit")
    assert page.locator("#id_steps-1-else-0-minutes").count() == 0
    page.fill("#id_steps-1-else-0-id", "done")
    assert page.locator(".messagelist").inner_text().startswith("Not saved yet")

    with page.expect_navigation():
        page.click('input[name="_continue"]')
    assert "steps[0].minutes: Ensure this value is greater than or equal to 1." in (
        field_errors(page, "steps[0].minutes")
    )
    assert "steps[0].minutes" in page.locator(".errorlist.nonfield").inner_text()
    assert not Journey.objects.exists()
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "journey-editor-error")

    page.fill("#id_steps-0-minutes", "240")
    with page.expect_navigation():
        page.click('input[name="_continue"]')
    assert "Published version 1." in page.locator(".messagelist").inner_text()
    journey = Journey.objects.get(slug="browse-follow-up")
    assert journey.current_version is not None
    expected, problems = journey_validate(example())
    assert problems == []
    assert journey.current_version.steps == expected["steps"]
    assert journey.snapshot() == {**expected, "status": "active"}

    # The saved page shows the journey as rows, laid out within a 1280px window.
    assert page.input_value("#id_steps-1-then-2-fallback_campaign") == "win-back-email"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, width
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "journey-editor")
    violations.assert_none()


def test_nested_lists_and_split_arms_fit_the_page(live_server: Any, page: Any) -> None:
    make_example_campaigns()
    data = example()
    data["steps"].append(
        {
            "id": "cart",
            "type": "wait_for",
            "event": "cart_updated",
            "match_key": "cart_id",
            "hours": 24,
            "matched": [
                {
                    "id": "ab",
                    "type": "split",
                    "holdout": 10,
                    "arms": [
                        {
                            "weight": 50,
                            "steps": [
                                {"id": "mail-a", "type": "send", "campaign": "browse-abandonment"}
                            ],
                        },
                        {"weight": 50, "steps": []},
                    ],
                }
            ],
            "timed_out": [
                {
                    "id": "tag",
                    "type": "action",
                    "action": "set_attribute",
                    "attribute": "cart_idle",
                    "value": "yes",
                }
            ],
        }
    )
    journey = journey_save(data, via="test").journey
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, live_server, marketer())
    page.goto(f"{live_server.url}/admin/journeys/journey/{journey.pk}/change/")
    assert page.input_value("#id_steps-2-matched-0-arms-1-weight") == "50"
    assert page.input_value("#id_steps-2-timed_out-0-attribute") == "cart_idle"
    assert page.locator('[data-path="steps[2].matched[0].arms[0].steps"]').is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 1280, width
    page.locator("#step-steps-2").scroll_into_view_if_needed()
    page.locator("#step-steps-2").screenshot(path=str(SCREENS / "journey-editor-nested.png"))
