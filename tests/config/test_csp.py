"""The Content-Security-Policy: every page a stranger or a marketer opens carries one that
refuses inline script, and every page still works under it in a real browser (no page of
ours leans on an inline script, an inline event handler or an inline style)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.contrib import admin
from django.contrib.auth.models import Group, User
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule

from campaigns.abtest.winner import campaign_decide
from campaigns.models import Campaign, MessageTemplate, Variant
from campaigns.tokens import preferences_url, unsubscribe_url
from segments.models import Segment
from segments.services import segment_refresh
from tests.campaigns.ab_helpers import ab_campaign, bulk_arm
from tests.factories import ContactFactory
from tests.triggers.helpers import make_rule

# Under VAR_DIR (var/test/ in `make test`), for a person to open after a run.
SCREENS = Path(django_settings.VAR_DIR) / "screens"
FRANCE = {"op": "and", "conditions": [{"type": "country", "operator": "in", "countries": ["FR"]}]}
DAY = dt.timedelta(days=1)


def directives(header: str) -> dict[str, list[str]]:
    """'default-src 'self'; img-src 'self' data:' → {"default-src": ["'self'"], ...}"""
    parsed: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            parsed[words[0]] = words[1:]
    return parsed


def assert_strict(response: Any) -> None:
    header = response.headers.get("Content-Security-Policy")
    assert header, f"no Content-Security-Policy on {response.wsgi_request.path}"
    policy = directives(header)
    script = policy.get("script-src", policy.get("default-src"))
    assert script == ["'self'"], header
    assert "'unsafe-inline'" not in header and "'unsafe-eval'" not in header, header
    assert policy["object-src"] == ["'none'"]
    assert policy["base-uri"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert policy["form-action"] == ["'self'"]


def public_contact() -> Any:
    contact = ContactFactory.create(first_name="Ada", email="ada@example.com")
    return contact


def public_paths(contact: Any) -> dict[str, str]:
    """The pages a stranger reaches, as paths (the links are absolute in emails)."""
    unsubscribe = unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")
    preferences = preferences_url(contact_id=contact.pk)
    return {
        "subscribe": "/subscribe/",
        "unsubscribe": "/u/" + unsubscribe.split("/u/", 1)[1],
        "preferences": "/preferences/" + preferences.split("/preferences/", 1)[1],
        "api docs": "/api/v1/docs",
    }


# --- The header ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_subscribe_page_refuses_inline_script(client: Client) -> None:
    assert_strict(client.get("/subscribe/"))


@pytest.mark.django_db
def test_the_consent_pages_refuse_inline_script(client: Client) -> None:
    paths = public_paths(public_contact())
    for name in ("unsubscribe", "preferences"):
        response = client.get(paths[name])
        assert response.status_code == 200, name
        assert_strict(response)


@pytest.mark.django_db
def test_the_invalid_link_page_refuses_inline_script(client: Client) -> None:
    response = client.get("/u/not-a-token/")
    assert response.status_code == 404
    assert_strict(response)


@pytest.mark.django_db
def test_the_api_docs_page_refuses_inline_script(client: Client) -> None:
    assert_strict(client.get("/api/v1/docs"))


@pytest.mark.django_db
def test_admin_pages_refuse_inline_script(admin_client: Client) -> None:
    assert_strict(admin_client.get("/admin/login/"))
    assert_strict(admin_client.get("/admin/"))
    assert_strict(admin_client.get("/admin/crm/contact/"))


@pytest.mark.django_db
def test_only_the_email_preview_allows_inline_styles_and_still_refuses_inline_script(
    admin_client: Client,
) -> None:
    template = email_template()
    preview = admin_client.get(f"/admin/campaigns/messagetemplate/{template.pk}/preview/")
    policy = directives(preview.headers["Content-Security-Policy"])
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]
    assert policy["script-src"] == ["'self'"]
    change = admin_client.get(f"/admin/campaigns/messagetemplate/{template.pk}/change/")
    assert_strict(change)


@pytest.mark.django_db
def test_styles_and_images_come_only_from_the_site(client: Client) -> None:
    policy = directives(client.get("/subscribe/").headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'"]
    assert policy["img-src"] == ["'self'", "data:"]


# --- In a real browser ----------------------------------------------------------------------


class Violations:
    """Every CSP refusal chromium reports, from the console (all frames) and from the
    securitypolicyviolation event of the page."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []
        page.on("console", self._console)
        page.add_init_script(
            "window.__csp = [];"
            "document.addEventListener('securitypolicyviolation', function (e) {"
            "  window.__csp.push(e.violatedDirective + ' ' + e.blockedURI + ' ' +"
            "    (e.sourceFile || '') + ':' + e.lineNumber);"
            "});"
        )

    def _console(self, message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or "Content-Security-Policy" in text:
            self.console.append(f"{self.page.url}: {text}")

    def events(self) -> list[str]:
        found: list[str] = self.page.evaluate("window.__csp || []")
        return [f"{self.page.url}: {event}" for event in found]

    def assert_none(self) -> None:
        # Reports are queued as tasks: give them a moment to arrive before judging.
        self.page.wait_for_timeout(150)
        problems = self.console + self.events()
        assert problems == [], "\n".join(problems)


@pytest.fixture
def watched(page: Any) -> Iterator[tuple[Any, Violations]]:
    yield page, Violations(page)


def log_in(page: Any, live_server: Any, user: User) -> None:
    """The session of a logged-in user, as the browser's cookie (the login form itself is
    tested in tests/config/test_admin_login.py)."""
    client = Client()
    client.force_login(user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


def superuser() -> User:
    return User.objects.create_superuser("ada", "ada@example.com", "correct-horse-42")


def marketer() -> User:
    user = User.objects.create_user("mia", "mia@example.com", "x", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    return user


def screenshot(page: Any, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=True)


def email_template() -> MessageTemplate:
    return MessageTemplate.objects.create(
        name="Spring newsletter",
        channel="email",
        subject="Hello {{ contact.first_name|default:'there' }}",
        # Emails are styled inline: the preview must still show them styled.
        html_body=(
            "<style>h1 { color: #b91c1c; }</style>"
            '<h1 style="font-family: Georgia, serif">Spring sale</h1>'
            '<p style="color: #1d4ed8">20% off this week.</p>'
        ),
        text_body="20% off this week.",
    )


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_public_pages_show_no_csp_violation(
    live_server: Any, watched: tuple[Any, Violations]
) -> None:
    page, violations = watched
    paths = public_paths(public_contact())
    for name, path in paths.items():
        page.goto(live_server.url + path)
        assert page.locator("h1").count() >= 1, name
    # The subscribe form still works: it posts and shows the "check your inbox" page.
    page.goto(live_server.url + "/subscribe/")
    # Styled from the site's own stylesheet, not an inline <style>.
    button_colour = page.eval_on_selector("button", "b => getComputedStyle(b).backgroundColor")
    assert button_colour == "rgb(29, 78, 216)"
    screenshot(page, "csp-subscribe")
    page.goto(live_server.url + paths["preferences"])
    assert page.eval_on_selector("fieldset", "f => getComputedStyle(f).borderTopStyle") == "solid"
    screenshot(page, "csp-preferences")
    violations.assert_none()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_admin_index_and_contacts_show_no_csp_violation(
    live_server: Any, watched: tuple[Any, Violations]
) -> None:
    page, violations = watched
    contact = ContactFactory.create(first_name="Grace", email="grace@example.com")
    ContactFactory.create(first_name="Alan", email="alan@example.com")
    log_in(page, live_server, superuser())
    page.goto(f"{live_server.url}/admin/")
    assert page.locator("#content-main").count() == 1
    page.goto(f"{live_server.url}/admin/crm/contact/")
    # The actions bar's select-all checkbox is admin JavaScript: it still works.
    page.check("#action-toggle")
    assert "2 of 2 selected" in page.inner_text(".action-counter")
    # The filter sidebar's JavaScript (remembered open/closed details) still runs.
    assert page.locator("#changelist-filter details").count() > 0
    page.goto(f"{live_server.url}/admin/crm/contact/{contact.pk}/change/")
    assert page.locator("#contact_form").count() == 1
    page.goto(f"{live_server.url}/admin/crm/dataquality/")
    assert page.locator("#quality-invalid").count() == 1
    violations.assert_none()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_segment_builder_works_with_no_csp_violation(
    live_server: Any, watched: tuple[Any, Violations]
) -> None:
    page, violations = watched
    ContactFactory.create(first_name="Jean", email="jean@example.com", country="FR")
    segment = Segment.objects.create(name="France", slug="france", definition=FRANCE)
    segment_refresh(segment=segment)
    log_in(page, live_server, marketer())
    page.goto(f"{live_server.url}/admin/segments/segment/{segment.pk}/change/")
    page.select_option("#builder-type", "lifecycle")
    assert page.locator('.builder-form[data-type="lifecycle"]').is_visible()
    page.click("#builder-add")
    definition = json.loads(page.input_value("#id_definition"))
    assert [c["type"] for c in definition["conditions"]] == ["country", "lifecycle"]
    page.fill("#id_definition", json.dumps(FRANCE))
    page.click("#preview-button")
    page.wait_for_selector("#preview-sample li")
    assert "1 contacts match now" in page.inner_text("#preview-size")
    violations.assert_none()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_rule_editor_adds_rows_with_no_csp_violation(
    live_server: Any, watched: tuple[Any, Violations]
) -> None:
    page, violations = watched
    rule = make_rule()
    log_in(page, live_server, marketer())
    page.goto(f"{live_server.url}/admin/triggers/triggerrule/{rule.pk}/change/")
    rows = page.locator("#conditions-editor li.rule-row")
    assert rows.count() == 2
    # The hidden default submit button is moved off-screen by the stylesheet.
    assert page.locator(".rule-default-submit").bounding_box()["x"] < 0
    page.click("#conditions-editor button.rule-add")
    assert rows.count() == 3
    page.select_option("#id_conditions-2-type", "event_count")
    assert page.locator("#id_conditions-2-event").is_visible()
    violations.assert_none()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_campaign_form_works_with_no_csp_violation(
    live_server: Any, watched: tuple[Any, Violations]
) -> None:
    page, violations = watched
    template = email_template()
    campaign = Campaign.objects.create(
        name="Spring sale", slug="spring", channel="email", status=Campaign.Status.SENDING
    )
    Variant.objects.create(campaign=campaign, template=template)
    log_in(page, live_server, superuser())
    progress = reverse("admin:campaigns_campaign_progress", args=[campaign.pk])
    # The live progress block is fetched by the page's own script every 3 seconds.
    with page.expect_request(lambda request: request.url.endswith(progress), timeout=8000):
        page.goto(f"{live_server.url}/admin/campaigns/campaign/{campaign.pk}/change/")
    assert page.locator(".campaign-controls form").count() >= 1
    # "Add another Variant": the inline formset's JavaScript adds a row.
    variants = page.locator("#variants-group tbody tr.form-row:not(.empty-form)")
    before = variants.count()
    page.click("#variants-group .add-row a")
    assert variants.count() == before + 1
    # The date picker's "Today" shortcut fills the date.
    page.click("#id_scheduled_at_0 ~ .datetimeshortcuts a:has-text('Today')")
    assert page.input_value("#id_scheduled_at_0") == timezone.localdate().isoformat()
    screenshot(page, "csp-campaign-form")
    violations.assert_none()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_template_pages_work_with_no_csp_violation(
    live_server: Any, watched: tuple[Any, Violations]
) -> None:
    page, violations = watched
    template = email_template()
    sms = MessageTemplate.objects.create(
        name="SMS", channel="sms", sms_body="Hi {{ contact.first_name }}"
    )
    ContactFactory.create(first_name="Ada", email="ada@example.com")
    log_in(page, live_server, marketer())
    page.goto(f"{live_server.url}/admin/campaigns/messagetemplate/{sms.pk}/change/")
    # The live SMS length counter is the page's own script.
    page.fill("#id_sms_body", "Hello there")
    assert page.inner_text("#sms-length-live").startswith("GSM-7, 11 characters, 1 segment")
    page.goto(f"{live_server.url}/admin/campaigns/messagetemplate/{template.pk}/preview/")
    frame = page.frame_locator("iframe.preview-html")
    heading = frame.locator("h1")
    assert heading.inner_text() == "Spring sale"
    # The email's own inline styles apply inside the sandboxed preview.
    assert heading.evaluate("h => getComputedStyle(h).color") == "rgb(185, 28, 28)"
    assert "Georgia" in heading.evaluate("h => getComputedStyle(h).fontFamily")
    screenshot(page, "csp-template-preview")
    violations.assert_none()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_ab_results_page_shows_no_csp_violation(
    live_server: Any, watched: tuple[Any, Violations]
) -> None:
    page, violations = watched
    start = timezone.now() - 10 * DAY
    campaign = ab_campaign(holdout=20, test_horizon_at=start + 7 * DAY, started_at=start)
    bulk_arm(campaign, "holdout", count=100, converted=5, sent_at=start)
    bulk_arm(campaign, "A", count=200, converted=20, clicked=30, sent_at=start)
    bulk_arm(campaign, "B", count=200, converted=10, clicked=20, sent_at=start)
    campaign_decide(campaign=campaign, enqueue=False)
    log_in(page, live_server, superuser())
    page.goto(live_server.url + reverse("admin:campaigns_campaign_results", args=[campaign.pk]))
    assert page.locator("svg.ab-rates circle").count() == 3
    # The banner is styled by the site's stylesheet.
    banner = page.eval_on_selector("#ab-horizon", "b => getComputedStyle(b).borderTopStyle")
    assert banner == "solid"
    page.set_viewport_size({"width": 1400, "height": 1200})
    screenshot(page, "csp-ab-results")
    violations.assert_none()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_injected_inline_script_is_refused(
    live_server: Any, watched: tuple[Any, Violations]
) -> None:
    page, violations = watched
    page.goto(f"{live_server.url}/subscribe/")
    page.evaluate(
        "() => { const s = document.createElement('script');"
        " s.textContent = 'window.injected = true;'; document.body.appendChild(s); }"
    )
    page.wait_for_timeout(150)
    assert page.evaluate("() => window.injected") is None
    assert any("script-src" in event for event in violations.events())


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_an_injected_inline_event_handler_is_refused(
    live_server: Any, watched: tuple[Any, Violations]
) -> None:
    page, violations = watched
    page.goto(f"{live_server.url}/subscribe/")
    page.evaluate(
        "() => { const b = document.createElement('button');"
        " b.id = 'evil'; b.type = 'button';"
        " b.setAttribute('onclick', 'window.clicked = true'); document.body.appendChild(b); }"
    )
    page.click("#evil")
    assert page.evaluate("() => window.clicked") is None
    assert any("script-src-attr" in event for event in violations.events())


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_every_admin_list_and_add_page_shows_no_csp_violation(
    live_server: Any, watched: tuple[Any, Violations]
) -> None:
    page, violations = watched
    ContactFactory.create(first_name="Grace", email="grace@example.com")
    user = superuser()
    log_in(page, live_server, user)
    request = RequestFactory().get("/admin/")
    request.user = user
    visited = []
    for model, model_admin in admin.site._registry.items():
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        page.goto(live_server.url + reverse(f"{name}_changelist"))
        visited.append(page.url)
        if model_admin.has_add_permission(request):
            page.goto(live_server.url + reverse(f"{name}_add"))
            visited.append(page.url)
    assert len(visited) > 20
    violations.assert_none()


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_periodic_task_form_still_shows_the_crontab_in_words(
    live_server: Any, watched: tuple[Any, Violations]
) -> None:
    page, violations = watched
    crontab = CrontabSchedule.objects.create(minute="30", hour="4")
    log_in(page, live_server, superuser())
    page.goto(f"{live_server.url}/admin/django_celery_beat/periodictask/add/")
    page.select_option("#id_crontab", str(crontab.pk))
    help_text = page.inner_text(".field-crontab .help")
    assert "Translation: At 04:30" in help_text, help_text
    violations.assert_none()
