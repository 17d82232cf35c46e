"""The rule editor in admin: a marketer builds conditions and actions as rows (a type select
walked from the registry and that type's own fields), without JSON and without JavaScript,
and sees each problem next to its field. One test drives a real browser."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client
from playwright.sync_api import expect

from segments.models import Segment
from tests.triggers.helpers import make_rule
from triggers.actions import actions as action_registry
from triggers.conditions import conditions as condition_registry
from triggers.models import TriggerRule

pytestmark = pytest.mark.django_db
ADD_URL = "/admin/triggers/triggerrule/add/"
CHANGELIST_URL = "/admin/triggers/triggerrule/"
FRANCE = {"type": "country", "operator": "in", "countries": ["FR"]}


@pytest.fixture
def marketer(client: Client) -> Client:
    user = User.objects.create_user("mia", "mia@example.com", "pw-not-used", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    client.force_login(user)
    return client


def rule_fields(**overrides: str) -> dict[str, str]:
    """The ordinary fields of the add page, as a browser posts them."""
    data = {
        "name": "Browse abandonment",
        "slug": "browse-abandonment",
        "enabled": "on",
        "description": "",
        "priority": "0",
        "match_mode": "all",
        "audience_segment": "",
        "active_from_0": "",
        "active_from_1": "",
        "active_until_0": "",
        "active_until_1": "",
        "reentry": "once_per_days",
        "reentry_days": "7",
    }
    data.update(overrides)
    return data


def browse_abandonment_rows(*, count: str = "3") -> dict[str, str]:
    return {
        "conditions-TOTAL": "2",
        "conditions-0-type": "event_count",
        "conditions-0-event": "product_viewed",
        "conditions-0-count": "3",
        "conditions-0-hours": "24",
        "conditions-0-where": "",
        "conditions-1-type": "event_count",
        "conditions-1-event": "cart_viewed",
        "conditions-1-count": count,
        "conditions-1-hours": "24",
        "conditions-1-where": "",
        "actions-TOTAL": "1",
        "actions-0-type": "set_attribute",
        "actions-0-attribute": "nudged",
        "actions-0-value": "yes",
        "actions-0-value_type": "text",
    }


def row_html(page: str, kind: str, index: int) -> str:
    """The HTML of one rendered row (the type templates use __prefix__, never a number)."""
    start = page.index(f'<li class="rule-row" data-index="{index}" data-path="{kind}[{index}]"')
    end = page.find('<li class="rule-row"', start + 1)
    return page[start : end if end != -1 else None]


def option_html(row: str, name: str) -> str:
    start = row.index(f'<div class="rule-field" data-option="{name}">')
    end = row.find('<div class="rule-field"', start + 1)
    return row[start : end if end != -1 else None]


def test_a_marketer_creates_a_rule_through_the_row_fields_alone(marketer: Client) -> None:
    response = marketer.post(ADD_URL, {**rule_fields(), **browse_abandonment_rows()})
    assert response.status_code == 302, response.content.decode()[:3000]
    rule = TriggerRule.objects.get(slug="browse-abandonment")
    assert rule.conditions == [
        {"id": "event_count", "event": "product_viewed", "count": 3, "hours": 24},
        {"id": "event_count", "event": "cart_viewed", "count": 3, "hours": 24},
    ]
    assert rule.actions == [
        {"id": "set_attribute", "attribute": "nudged", "value": "yes", "value_type": "text"}
    ]
    assert rule.version == 1


def test_an_invalid_count_shows_its_error_next_to_that_rows_field_and_saves_nothing(
    marketer: Client,
) -> None:
    response = marketer.post(ADD_URL, {**rule_fields(), **browse_abandonment_rows(count="0")})
    assert response.status_code == 200
    page = response.content.decode()
    count = option_html(row_html(page, "conditions", 1), "count")
    assert 'class="errorlist"' in count
    assert "conditions[1].count: Ensure this value is greater than or equal to 1." in count
    assert "errorlist" not in row_html(page, "conditions", 0)
    # What was typed comes back, in place.
    assert 'value="cart_viewed"' in option_html(row_html(page, "conditions", 1), "event")
    assert not TriggerRule.objects.exists()


def test_changing_a_rows_type_shows_that_types_fields_and_saves_nothing(
    marketer: Client,
) -> None:
    rows = {**browse_abandonment_rows(), "conditions-1-type": "event_absent"}
    response = marketer.post(
        ADD_URL, {**rule_fields(), **rows, "_rule_editor_refresh": "conditions-1"}
    )
    assert response.status_code == 200
    page = response.content.decode()
    row = row_html(page, "conditions", 1)
    assert '<option value="event_absent" selected>' in row
    assert 'name="conditions-1-hours"' in row
    assert 'name="conditions-1-count"' not in row  # event_absent has no count
    assert 'value="cart_viewed"' in row  # an option both types have keeps its value
    assert "Not saved yet" in page
    assert "Please correct" not in page
    assert not TriggerRule.objects.exists()


def test_the_add_button_without_javascript_adds_a_row_with_a_type_select(
    marketer: Client,
) -> None:
    response = marketer.post(
        ADD_URL,
        {**rule_fields(), "conditions-TOTAL": "0", "actions-TOTAL": "0"}
        | {"_rule_editor_add": "conditions"},
    )
    row = row_html(response.content.decode(), "conditions", 0)
    assert 'name="conditions-0-type"' in row
    assert '<option value="event_count">Event count: {event} at least {count}' in row
    assert '<option value="send_campaign">' not in row  # actions are the other registry


def test_the_remove_button_without_javascript_drops_that_row(marketer: Client) -> None:
    response = marketer.post(
        ADD_URL,
        {**rule_fields(), **browse_abandonment_rows(), "_rule_editor_remove": "conditions-0"},
    )
    page = response.content.decode()
    assert 'value="cart_viewed"' in row_html(page, "conditions", 0)
    assert 'data-path="conditions[1]"' not in page


def test_a_blank_row_asks_for_a_type_and_saves_nothing(marketer: Client) -> None:
    rows = {**browse_abandonment_rows(), "conditions-TOTAL": "3", "conditions-2-type": ""}
    page = marketer.post(ADD_URL, {**rule_fields(), **rows}).content.decode()
    assert "conditions[2].id: unknown type &#x27;&#x27;" in row_html(page, "conditions", 2)
    assert not TriggerRule.objects.exists()


def test_the_json_is_saved_instead_of_the_rows_when_ticked(marketer: Client) -> None:
    dormancy = [{"id": "dormancy", "days": 60}]
    data = {
        **rule_fields(),
        **browse_abandonment_rows(),
        "conditions-use_json": "on",
        "conditions": json.dumps(dormancy),
    }
    assert marketer.post(ADD_URL, data).status_code == 302
    assert TriggerRule.objects.get().conditions == dormancy


def test_invalid_json_in_the_escape_hatch_is_reported_and_kept(marketer: Client) -> None:
    data = {
        **rule_fields(),
        **browse_abandonment_rows(),
        "conditions-use_json": "on",
        "conditions": '[{"id": "dormancy", "days": 60',
    }
    page = marketer.post(ADD_URL, data).content.decode()
    assert "conditions: not valid JSON" in page
    assert "[{&quot;id&quot;: &quot;dormancy&quot;, &quot;days&quot;: 60</textarea>" in page
    assert '<details class="rule-json" open>' in page
    assert not TriggerRule.objects.exists()


def test_the_change_page_shows_the_stored_rule_as_rows_in_words(marketer: Client) -> None:
    rule = make_rule()
    page = marketer.get(f"/admin/triggers/triggerrule/{rule.pk}/change/").content.decode()
    first = row_html(page, "conditions", 0)
    assert '<option value="event_count" selected>' in first
    assert 'value="product_viewed"' in option_html(first, "event")
    assert "“product_viewed at least 3 times in 24 hours”" in first
    assert '<option value="event_absent" selected>' in row_html(page, "conditions", 1)
    assert '<option value="set_attribute" selected>' in row_html(page, "actions", 0)


def test_saving_the_change_page_unchanged_keeps_the_version(marketer: Client) -> None:
    rule = make_rule()
    rows = {
        "conditions-TOTAL": "2",
        "conditions-0-type": "event_count",
        "conditions-0-event": "product_viewed",
        "conditions-0-count": "3",
        "conditions-0-hours": "24",
        "conditions-1-type": "event_absent",
        "conditions-1-event": "order_completed",
        "conditions-1-hours": "24",
        "actions-TOTAL": "1",
        "actions-0-type": "set_attribute",
        "actions-0-attribute": "nudged",
        "actions-0-value": "yes",
    }
    response = marketer.post(
        f"/admin/triggers/triggerrule/{rule.pk}/change/",
        {
            **rule_fields(),
            **rows,
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "1",
            "versions-0-id": str(rule.versions.get().pk),
            "versions-0-rule": str(rule.pk),
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    rule.refresh_from_db()
    assert rule.version == 1


def test_segment_names_rule_names_and_typed_values_are_escaped(marketer: Client) -> None:
    Segment.objects.create(name='<script>alert("segment")</script>', slug="x", definition=FRANCE)
    rule = make_rule(
        name="<img src=x onerror=alert(1)>",
        conditions=[
            {"id": "attribute", "attribute": "plan", "operator": "equals", "value": "<b>pro</b>"}
        ],
    )
    page = marketer.get(f"/admin/triggers/triggerrule/{rule.pk}/change/").content.decode()
    assert '<script>alert("segment")</script>' not in page
    assert "&lt;script&gt;alert(&quot;segment&quot;)&lt;/script&gt;" in page
    assert "<img src=x" not in page
    assert "<b>pro</b>" not in page
    assert "“attribute plan equals &lt;b&gt;pro&lt;/b&gt;”" in page


def test_no_options_form_uses_a_name_the_editor_keeps_for_itself() -> None:
    for registry in (condition_registry, action_registry):
        for item in registry:
            assert "type" not in item.form.base_fields, item.id


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_marketer_builds_a_rule_in_the_browser(live_server: Any, page: Any) -> None:
    user = User.objects.create_user("mia", "mia@example.com", "correct-horse-42", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    page.goto(f"{live_server.url}/admin/login/?next={ADD_URL}")
    page.fill("#id_username", "mia")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    page.fill("#id_name", "Looked three times")
    page.fill("#id_slug", "looked-three-times")
    page.fill("#id_reentry_days", "7")
    # The "show its fields" buttons are for pages without JavaScript.
    expect(page.locator("button.rule-nojs:visible")).to_have_count(0)
    page.click("#conditions-editor button.rule-add")
    page.select_option("#id_conditions-0-type", "event_count")
    page.fill("#id_conditions-0-event", "product_viewed")
    page.fill("#id_conditions-0-count", "3")
    page.fill("#id_conditions-0-hours", "24")
    # A second row, added then removed in the page, leaves a gap the save must skip.
    page.click("#conditions-editor button.rule-add")
    page.click("#conditions-editor li.rule-row[data-index='1'] button.rule-remove")
    expect(page.locator("#conditions-editor li.rule-row")).to_have_count(1)
    page.click("#actions-editor button.rule-add")
    page.select_option("#id_actions-0-type", "set_attribute")
    page.fill("#id_actions-0-attribute", "looked")
    page.fill("#id_actions-0-value", "yes")
    page.click("input[name=_save]")
    page.wait_for_selector("#result_list")
    assert page.url.endswith(CHANGELIST_URL)
    assert re.search(r"Looked three times", page.inner_text("#result_list"))
    rule = TriggerRule.objects.get(slug="looked-three-times")
    assert rule.conditions == [
        {"id": "event_count", "event": "product_viewed", "count": 3, "hours": 24}
    ]
    assert rule.actions == [
        {"id": "set_attribute", "attribute": "looked", "value": "yes", "value_type": "text"}
    ]
