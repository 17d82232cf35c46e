"""The journey editor in admin, server side: a journey shown as rows and posted back as a
browser would post them, built from rows with no JSON, errors named by path next to their
field, the YAML fallback, and a marketer (not a superuser) creating one."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Group, User
from django.test import Client

from config.marketers import MARKETERS_GROUP
from journeys.models import Journey
from journeys.services import journey_save
from journeys.validation import journey_validate
from tests.journeys.helpers import example, make_example_campaigns

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/journeys/journey/add/"


class FormFields(HTMLParser):
    """The fields of the page's form as a browser posts them (buttons left out)."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: list[tuple[str, str]] = []
        self._select: str | None = None
        self._selected: list[str] = []
        self._first: str | None = None
        self._multiple = False
        self._option: str | None = None
        self._textarea: str | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {key: value or "" for key, value in attrs}
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") == "checkbox" and "checked" not in a:
                return
            default = "on" if a.get("type") == "checkbox" else ""
            self.fields.append((a["name"], a.get("value", default)))
        elif tag == "select":
            self._select, self._selected, self._first = a.get("name"), [], None
            self._multiple = "multiple" in a
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            self._first = value if self._first is None else self._first
            if "selected" in a:
                self._selected.append(value)
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self._select:
            first = [self._first] if self._first is not None and not self._multiple else []
            chosen = self._selected or first
            self.fields.extend((self._select, value) for value in chosen)
            self._select = None
        elif tag == "textarea" and self._textarea:
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self._text += data


def posted(page: str, **changes: str) -> dict[str, Any]:
    """The page's form (without its <template> parts, which a browser does not post)."""
    while "<template" in page:
        start = page.index("<template")
        page = page[:start] + page[page.index("</template>", start) + len("</template>") :]
    form = page[page.index('id="journey_form"') :]
    parser = FormFields()
    parser.feed(form)
    data: dict[str, Any] = {}
    for name, value in parser.fields:
        if name in data:
            data[name] = [*(data[name] if isinstance(data[name], list) else [data[name]]), value]
        else:
            data[name] = value
    data.update(changes)
    return data


@pytest.fixture
def admin(client: Client) -> Client:
    user = User.objects.create_superuser("ada", "ada@example.com", "x")
    client.force_login(user)
    return client


@pytest.fixture
def marketer(client: Client) -> Client:
    user = User.objects.create_user("mia", "mia@example.com", "x", is_staff=True)
    user.groups.add(Group.objects.get(name=MARKETERS_GROUP))
    client.force_login(user)
    return client


@pytest.fixture
def journey() -> Journey:
    make_example_campaigns()
    return journey_save(example(), via="test").journey


def change_url(journey: Journey) -> str:
    return f"/admin/journeys/journey/{journey.pk}/change/"


def expected_steps() -> list[dict[str, Any]]:
    clean, problems = journey_validate(example())
    assert problems == []
    steps: list[dict[str, Any]] = clean["steps"]
    return steps


def test_the_journey_is_shown_as_rows_and_saving_it_back_changes_nothing(
    admin: Client, journey: Journey
) -> None:
    page = admin.get(change_url(journey)).content.decode()
    assert "Advanced: the steps[1].conditions as JSON" in page
    data = posted(page)
    assert data["steps-0-minutes"] == "240"
    assert data["steps-1-type"] == "branch"
    assert data["steps-1-then-0-campaign"] == "browse-abandonment"
    assert data["steps-1-then-2-fallback_campaign"] == "win-back-email"
    assert data["steps-1-conditions-0-type"] == "event_absent"
    assert data["steps-1-else-0-type"] == "exit"
    assert data["reentry_mode"] == "once_per_days"
    response = admin.post(change_url(journey), {**data, "_continue": "1"}, follow=True)
    assert "Saved; steps unchanged, still version 1." in response.content.decode()
    journey.refresh_from_db()
    assert journey.versions.count() == 1
    assert LogEntry.objects.latest("action_time").get_change_message() == "No fields changed."


def test_a_changed_wait_publishes_a_new_version(admin: Client, journey: Journey) -> None:
    data = posted(admin.get(change_url(journey)).content.decode(), **{"steps-0-minutes": "60"})
    response = admin.post(change_url(journey), {**data, "_continue": "1"}, follow=True)
    assert "Published version 2." in response.content.decode()
    journey.refresh_from_db()
    assert journey.current_version is not None
    assert journey.current_version.steps[0] == {"id": "cool-off", "type": "wait", "minutes": 60}
    assert journey.current_version.published_by == "ada (admin)"
    assert LogEntry.objects.latest("action_time").get_change_message() == "Changed Steps."


def test_a_wrong_field_is_named_by_its_path_beside_it_and_nothing_is_saved(
    admin: Client, journey: Journey
) -> None:
    data = posted(
        admin.get(change_url(journey)).content.decode(),
        **{"steps-0-minutes": "0", "steps-1-then-0-campaign": "no-such-campaign"},
    )
    page = admin.post(change_url(journey), data).content.decode()
    field = page[page.index('data-path="steps[1].then[0].campaign"') :]
    field = field[: field.index("</div>")]
    assert "steps[1].then[0].campaign: no campaign with the slug &#x27;no-such-campaign&#x27;" in (
        field
    )
    assert "no-such-campaign (unknown)" in field
    wait = page[page.index('data-path="steps[0].minutes"') :]
    assert "steps[0].minutes: Ensure this value is greater than or equal to 1." in wait[:800]
    summary = page[page.index("errornote") : page.index('id="journey-steps"')]
    assert "steps[0].minutes" in summary
    assert "steps[1].then[0].campaign" in summary
    journey.refresh_from_db()
    assert journey.versions.count() == 1
    assert journey.current_version is not None
    assert journey.current_version.steps == expected_steps()


def press(client: Client, url: str, data: dict[str, Any], **button: str) -> str:
    """Presses an editor button: the page comes back re-rendered, nothing saved."""
    response = client.post(url, {**data, **button})
    assert response.status_code == 200
    page = response.content.decode()
    assert "Not saved yet" in page
    return page


def test_the_example_is_built_from_rows_with_no_json(admin: Client) -> None:
    make_example_campaigns()
    page = admin.get(ADD_URL).content.decode()
    settings = {
        "name": "Browse follow-up",
        "slug": "browse-follow-up",
        "enabled": "on",
        "reentry_mode": "once_per_days",
        "reentry_days": "7",
        "goal_event": "order_completed",
        "goal_within_days": "7",
    }
    data = posted(page, **settings)
    page = press(admin, ADD_URL, data, _journey_add="steps", **{"steps-new_type": "wait"})
    data = posted(page, **{"steps-0-id": "cool-off", "steps-0-minutes": "240"})
    page = press(admin, ADD_URL, data, _journey_add="steps", **{"steps-new_type": "branch"})
    assert posted(page)["steps-1-id"] == "branch-1"  # an id is suggested
    data = posted(page, **{"steps-1-id": "bought"})
    page = press(admin, ADD_URL, data, _rule_editor_add="steps-1-conditions")
    data = posted(page, **{"steps-1-conditions-0-type": "event_absent"})
    page = press(admin, ADD_URL, data, _rule_editor_refresh="steps-1-conditions-0")
    data = posted(
        page,
        **{"steps-1-conditions-0-event": "order_completed", "steps-1-conditions-0-hours": "24"},
    )
    for key, kind in (("then", "send"), ("then", "wait"), ("then", "send"), ("else", "exit")):
        page = press(
            admin,
            ADD_URL,
            data,
            _journey_add=f"steps-1-{key}",
            **{f"steps-1-{key}-new_type": kind},
        )
        data = posted(page)
    data.update(
        {
            "steps-1-then-0-id": "email-1",
            "steps-1-then-0-campaign": "browse-abandonment",
            "steps-1-then-1-id": "wait-day",
            "steps-1-then-1-days": "1",
            "steps-1-then-2-id": "sms-1",
            "steps-1-then-2-campaign": "win-back-sms",
            "steps-1-then-2-fallback_campaign": "win-back-email",
            "steps-1-else-0-id": "done",
        }
    )
    response = admin.post(ADD_URL, {**data, "_save": "Save"}, follow=True)
    assert "Published version 1." in response.content.decode()
    journey = Journey.objects.get(slug="browse-follow-up")
    assert journey.current_version is not None
    assert journey.current_version.steps == expected_steps()
    assert journey.snapshot() == {**journey_validate(example())[0], "status": "active"}


def test_remove_and_move_up_change_the_rows_only(admin: Client, journey: Journey) -> None:
    data = posted(admin.get(change_url(journey)).content.decode())
    page = press(admin, change_url(journey), data, _journey_up="steps-1-then-1")
    moved = posted(page)
    assert moved["steps-1-then-0-id"] == "wait-day"
    assert moved["steps-1-then-1-id"] == "email-1"
    page = press(admin, change_url(journey), moved, _journey_remove="steps-1-then-0")
    assert "wait-day" not in str(posted(page).values())
    journey.refresh_from_db()
    assert journey.versions.count() == 1


def test_a_split_gets_arms_with_weights(admin: Client, journey: Journey) -> None:
    data = posted(admin.get(change_url(journey)).content.decode())
    page = press(
        admin,
        change_url(journey),
        data,
        _journey_add="steps-1-else",
        **{"steps-1-else-new_type": "split"},
    )
    data = posted(page)
    assert data["steps-1-else-1-arms-0-weight"] == "50"
    page = press(admin, change_url(journey), data, _journey_add="steps-1-else-1-arms-0-steps")
    data = posted(
        page, **{"steps-1-else-1-arms-0-steps-0-type": "exit", "steps-1-else-1-holdout": "10"}
    )
    data["steps-1-else-1-arms-0-steps-0-id"] = "arm-a-out"
    data["steps-1-else-1-arms-1-weight"] = "30"
    response = admin.post(change_url(journey), {**data, "_continue": "1"}, follow=True)
    assert "Published version 2." in response.content.decode()
    journey.refresh_from_db()
    assert journey.current_version is not None
    split = journey.current_version.steps[1]["else"][1]
    assert split == {
        "id": "split-1",
        "type": "split",
        "holdout": 10,
        "arms": [
            {"weight": 50, "steps": [{"id": "arm-a-out", "type": "exit"}]},
            {"weight": 30, "steps": []},
        ],
    }


def test_the_yaml_fallback_saves_instead_of_the_rows(admin: Client, journey: Journey) -> None:
    data = posted(admin.get(change_url(journey)).content.decode())
    assert "{id: cool-off, type: wait, minutes: 240}" in data["steps-yaml"]
    text = data["steps-yaml"].replace("minutes: 240", "minutes: 30")
    data.update({"steps-yaml": text, "steps-use_yaml": "on"})
    response = admin.post(change_url(journey), {**data, "_continue": "1"}, follow=True)
    assert "Published version 2." in response.content.decode()
    journey.refresh_from_db()
    assert journey.current_version is not None
    assert journey.current_version.steps[0]["minutes"] == 30


def test_yaml_errors_are_named_by_path_and_shown_in_the_rows_too(
    admin: Client, journey: Journey
) -> None:
    data = posted(admin.get(change_url(journey)).content.decode())
    text = data["steps-yaml"].replace("minutes: 240", "minutes: 0")
    page = admin.post(
        change_url(journey), {**data, "steps-yaml": text, "steps-use_yaml": "on"}
    ).content.decode()
    yaml_box = page[page.index('class="journey-yaml"') :]
    assert "steps[0].minutes: Ensure this value is greater than or equal to 1." in yaml_box
    row = page[page.index('data-path="steps[0].minutes"') :][:800]
    assert "steps[0].minutes: Ensure this value" in row
    broken = admin.post(
        change_url(journey), {**data, "steps-yaml": "steps: [", "steps-use_yaml": "on"}
    ).content.decode()
    assert "steps: not valid YAML" in broken
    journey.refresh_from_db()
    assert journey.versions.count() == 1


def test_attacker_controlled_values_are_escaped(admin: Client, journey: Journey) -> None:
    data = posted(
        admin.get(change_url(journey)).content.decode(),
        **{"steps-1-then-0-id": "<script>x</script>"},
    )
    page = admin.post(change_url(journey), data).content.decode()
    assert "<script>x</script>" not in page
    assert "&lt;script&gt;x&lt;/script&gt;" in page


def test_a_marketer_creates_and_changes_a_journey(marketer: Client) -> None:
    make_example_campaigns()
    add_page = marketer.get(ADD_URL)
    assert add_page.status_code == 200
    data = posted(add_page.content.decode(), name="Welcome", slug="welcome")
    page = press(marketer, ADD_URL, data, _journey_add="steps", **{"steps-new_type": "send"})
    data = posted(page, **{"steps-0-campaign": "browse-abandonment"})
    response = marketer.post(ADD_URL, {**data, "_continue": "1"}, follow=True)
    assert "Published version 1." in response.content.decode()
    journey = Journey.objects.get(slug="welcome")
    assert journey.current_version is not None
    assert journey.current_version.steps == [
        {"id": "send-1", "type": "send", "campaign": "browse-abandonment"}
    ]
    assert journey.current_version.published_by == "mia (admin)"
    data = posted(marketer.get(change_url(journey)).content.decode(), name="Welcome aboard")
    marketer.post(change_url(journey), {**data, "_save": "Save"})
    journey.refresh_from_db()
    assert journey.name == "Welcome aboard"
    assert marketer.post(f"/admin/journeys/journey/{journey.pk}/delete/").status_code == 403


def test_an_existing_slug_is_not_overwritten_from_the_add_page(
    admin: Client, journey: Journey
) -> None:
    data = posted(admin.get(ADD_URL).content.decode(), name="Other", slug=journey.slug)
    page = admin.post(ADD_URL, data).content.decode()
    assert "slug: a journey &#x27;browse-follow-up&#x27; exists already" in page
    journey.refresh_from_db()
    assert journey.name == "Browse follow-up"


def test_a_wait_for_and_an_action_step_from_rows(admin: Client, journey: Journey) -> None:
    url = change_url(journey)
    data = posted(admin.get(url).content.decode())
    page = press(admin, url, data, _journey_add="steps", **{"steps-new_type": "wait_for"})
    data = posted(page, **{"steps-2-event": "cart_updated", "steps-2-hours": "24"})
    data["steps-2-weekdays"] = ["mon"]  # no such field on wait_for: ignored
    page = press(
        admin,
        url,
        data,
        _journey_add="steps-2-timed_out",
        **{"steps-2-timed_out-new_type": "action"},
    )
    data = posted(page, **{"steps-2-timed_out-0-action": "set_attribute"})
    # Choosing the action shows its own fields (the script presses this for the marketer).
    page = press(admin, url, data, _journey_refresh="steps-2-timed_out-0")
    assert 'name="steps-2-timed_out-0-attribute"' in page
    data = posted(
        page,
        **{"steps-2-timed_out-0-attribute": "browsed_only", "steps-2-timed_out-0-value": "yes"},
    )
    response = admin.post(url, {**data, "_continue": "1"}, follow=True)
    assert "Published version 2." in response.content.decode()
    journey.refresh_from_db()
    assert journey.current_version is not None
    assert journey.current_version.steps[2] == {
        "id": "wait-for-1",
        "type": "wait_for",
        "event": "cart_updated",
        "hours": 24,
        "matched": [],
        "timed_out": [
            {
                "id": "action-1",
                "type": "action",
                "action": "set_attribute",
                "attribute": "browsed_only",
                "value": "yes",
                "value_type": "text",
            }
        ],
    }
    page = admin.get(url).content.decode()
    assert posted(page)["steps-2-timed_out-0-attribute"] == "browsed_only"
