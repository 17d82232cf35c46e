"""Campaigns in admin as a marketer uses them: templates checked on save with the error
under its field, previews for a chosen contact, live progress, pause/resume/cancel, and
records that show attacker-controlled text escaped."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from campaigns.admin import progress_html
from campaigns.models import Campaign, Delivery, FrequencyCap, MessageTemplate, Response, Variant
from crm.models import Contact
from segments.models import StaticList
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

TEMPLATE_ADD = reverse("admin:campaigns_messagetemplate_add")
CAMPAIGN_ADD = reverse("admin:campaigns_campaign_add")


@pytest.fixture
def superuser_client() -> Client:
    user = User.objects.create_superuser("sam", "sam@example.com", "x")
    client = Client()
    client.force_login(user)
    return client


def template_post(**fields: str) -> dict[str, str]:
    data = {
        "name": "Browse abandonment A",
        "channel": "email",
        "subject": "Hi {{ contact.first_name|default:'there' }}",
        "preheader": "",
        "html_body": "<p>You looked at {{ last_viewed.product_name }}</p>",
        "text_body": "",
        "sms_body": "",
    }
    data.update(fields)
    return data


def make_campaign(status: str = Campaign.Status.DRAFT, **fields: Any) -> Campaign:
    template = MessageTemplate.objects.create(
        name="t", channel="email", subject="Hello", html_body="<p>Hi</p>"
    )
    campaign = Campaign.objects.create(
        name="Spring sale",
        slug=f"spring-{Campaign.objects.count()}",
        channel="email",
        status=status,
        **fields,
    )
    Variant.objects.create(campaign=campaign, template=template)
    return campaign


def chosen_contact(response: Any) -> Contact | None:
    # The page's own context: response.context would also list every message template the
    # restricted engine rendered during the request, which have a "contact" of their own.
    data = response.context_data
    assert data is not None
    contact: Contact | None = data["contact"]
    return contact


# --- Templates -----------------------------------------------------------------------------


def test_a_marketer_can_add_a_valid_template(marketer_client: Client) -> None:
    response = marketer_client.post(TEMPLATE_ADD, template_post())

    assert response.status_code == 302
    assert MessageTemplate.objects.get().name == "Browse abandonment A"


def test_template_errors_are_shown_under_each_field_and_nothing_is_saved(
    marketer_client: Client,
) -> None:
    response = marketer_client.post(
        TEMPLATE_ADD,
        template_post(
            subject="{% include 'admin/base.html' %}",
            html_body="<p>{% for x in y %}</p>",
        ),
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["subject"] == ["{% include %} is not allowed (line 1)"]
    assert form.errors["html_body"] == [
        "Unclosed tag on line 1: 'for'. Looking for one of: empty, endfor."
    ]
    content = response.content.decode()
    assert "{% include %} is not allowed (line 1)" in content
    assert MessageTemplate.objects.count() == 0


def test_an_sms_template_needs_an_sms_body(marketer_client: Client) -> None:
    response = marketer_client.post(
        TEMPLATE_ADD, template_post(channel="sms", subject="", html_body="", sms_body="")
    )

    assert response.context["adminform"].form.errors["sms_body"] == [
        "an SMS template needs an SMS body"
    ]


def test_the_template_page_shows_the_sms_length_in_segments(marketer_client: Client) -> None:
    template = MessageTemplate.objects.create(name="s", channel="sms", sms_body="€" * 81)

    response = marketer_client.get(
        reverse("admin:campaigns_messagetemplate_change", args=[template.pk])
    )

    assert "GSM-7, 162 characters, 2 segments (before personalisation)" in response.content.decode()


def test_the_preview_renders_for_a_contact_chosen_by_email(marketer_client: Client) -> None:
    ContactFactory.create(first_name="Other")
    chosen = ContactFactory.create(first_name="Zoë", email="zoe@example.com")
    template = MessageTemplate.objects.create(
        name="t",
        channel="email",
        subject="Hi {{ contact.first_name }}",
        html_body="<p>Hello {{ contact.first_name }}</p>",
    )
    url = reverse("admin:campaigns_messagetemplate_preview", args=[template.pk])

    response = marketer_client.get(url, {"contact": "ZOE@example.com"})

    content = response.content.decode()
    assert response.status_code == 200
    assert chosen_contact(response) == chosen
    assert '<p class="preview-subject">Hi Zoë</p>' in content
    # The HTML goes into a sandboxed iframe's srcdoc, escaped as an attribute value.
    assert 'sandbox=""' in content
    assert 'srcdoc="&lt;p&gt;Hello Zoë&lt;/p&gt;' in content
    # The text part, with the standard footer and a placeholder for the customer's link.
    assert "Unsubscribe: #unsubscribe-link-preview" in content


def test_the_preview_of_a_contact_named_like_a_script_runs_nothing(
    marketer_client: Client,
) -> None:
    contact = ContactFactory.create(first_name="<script>alert(1)</script>")
    template = MessageTemplate.objects.create(
        name="t", channel="email", subject="Hi {{ contact.first_name }}", html_body="<p>x</p>"
    )
    url = reverse("admin:campaigns_messagetemplate_preview", args=[template.pk])

    content = marketer_client.get(url, {"contact": str(contact.pk)}).content.decode()

    assert "<script>alert(1)</script>" not in content
    assert "Hi &lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_the_sms_preview_shows_the_segment_count(marketer_client: Client) -> None:
    contact = ContactFactory.create(first_name="Ada", phone="+14155550100")
    template = MessageTemplate.objects.create(
        name="s", channel="sms", sms_body="Hi {{ contact.first_name }}, 10% off. Reply STOP"
    )
    url = reverse("admin:campaigns_messagetemplate_preview", args=[template.pk])

    content = marketer_client.get(url, {"contact": str(contact.pk)}).content.decode()

    assert "Hi Ada, 10% off. Reply STOP" in content
    assert "GSM-7, 27 characters, 1 segment" in content


def test_the_preview_says_when_no_contact_matches(marketer_client: Client) -> None:
    template = MessageTemplate.objects.create(name="t", channel="email", subject="s")
    url = reverse("admin:campaigns_messagetemplate_preview", args=[template.pk])

    content = marketer_client.get(url, {"contact": "<b>nobody</b>"}).content.decode()

    assert "No contact with id or email “&lt;b&gt;nobody&lt;/b&gt;”." in content


# --- Campaigns -----------------------------------------------------------------------------


def campaign_post(template: MessageTemplate, **fields: str) -> dict[str, str]:
    data = {
        "name": "Spring sale",
        "slug": "spring-sale",
        "channel": "email",
        "kind": "broadcast",
        "status": "draft",
        "holdout_percent": "0",
        "purpose": "marketing",
        "priority": "5",
        "defer_when_capped": "on",
        "goal_event": "order_completed",
        "attribution_window_days": "5",
        "test_share": "100",
        "winner_metric": "conversion",
        "winner_confidence": "0.95",
        "attribution": "last_touch",
        "variants-TOTAL_FORMS": "1",
        "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "1",
        "variants-MAX_NUM_FORMS": "1000",
        "variants-0-name": "A",
        "variants-0-template": str(template.pk),
        "variants-0-weight": "1",
    }
    data.update(fields)
    return data


def test_a_marketer_can_create_a_campaign_with_a_variant(marketer_client: Client) -> None:
    template = MessageTemplate.objects.create(
        name="t", channel="email", subject="s", html_body="<p>x</p>"
    )

    response = marketer_client.post(CAMPAIGN_ADD, campaign_post(template))

    assert response.status_code == 302
    campaign = Campaign.objects.get(slug="spring-sale")
    assert [(v.name, v.template_id, v.weight) for v in campaign.variants.all()] == [
        ("A", template.pk, 1)
    ]


def test_a_variant_with_a_template_of_the_other_channel_is_refused(
    marketer_client: Client,
) -> None:
    template = MessageTemplate.objects.create(name="sms one", channel="sms", sms_body="Hi")

    response = marketer_client.post(CAMPAIGN_ADD, campaign_post(template))

    assert response.status_code == 200
    assert "sms one is an sms template; this campaign sends email." in response.content.decode()
    assert not Campaign.objects.exists()


def test_status_cannot_be_set_to_sending_from_the_form(marketer_client: Client) -> None:
    template = MessageTemplate.objects.create(
        name="t", channel="email", subject="s", html_body="<p>x</p>"
    )

    response = marketer_client.post(CAMPAIGN_ADD, campaign_post(template, status="sending"))

    assert response.status_code == 200
    assert "use the Pause, Resume and Cancel buttons" in response.content.decode()


def add_deliveries(campaign: Campaign, rows: list[tuple[str, str, int]]) -> None:
    contacts = [ContactFactory.create() for _ in range(sum(n for _, _, n in rows))]
    iterator = iter(contacts)
    Delivery.objects.bulk_create(
        Delivery(campaign=campaign, contact=next(iterator), channel="email", status=s, reason=r)
        for s, r, n in rows
        for _ in range(n)
    )


def test_the_progress_block_counts_deliveries_by_status_and_held_back_by_reason(
    marketer_client: Client,
) -> None:
    campaign = make_campaign(Campaign.Status.SENDING)
    add_deliveries(
        campaign,
        [
            ("queued", "", 3),
            ("sent", "", 2),
            ("skipped", "no_consent", 2),
            ("skipped", "suppressed", 1),
            ("deferred", "quiet_hours", 1),
        ],
    )

    response = marketer_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))

    content = response.content.decode()
    assert "Deliveries: <strong>9</strong>" in content
    assert '<th scope="row">Queued</th><td class="progress-queued">3</td>' in content
    assert '<th scope="row">Skipped</th><td class="progress-skipped">3</td>' in content
    assert "<tr><td>Skipped</td><td>No consent</td><td>2</td></tr>" in content
    assert "<tr><td>Deferred</td><td>Quiet hours</td><td>1</td></tr>" in content
    # Refreshes itself while sending.
    assert reverse("admin:campaigns_campaign_progress", args=[campaign.pk]) in content


def test_the_progress_block_is_one_query(django_assert_num_queries: Any) -> None:
    campaign = make_campaign(Campaign.Status.SENDING)
    add_deliveries(campaign, [("sent", "", 2), ("skipped", "capped", 1)])

    with django_assert_num_queries(1):
        html = progress_html(campaign)

    assert "<td>Frequency cap</td><td>1</td>" in html


def test_the_progress_endpoint_answers_the_fresh_block(marketer_client: Client) -> None:
    campaign = make_campaign(Campaign.Status.SENDING)
    add_deliveries(campaign, [("sent", "", 4)])

    response = marketer_client.get(reverse("admin:campaigns_campaign_progress", args=[campaign.pk]))

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert "Deliveries: <strong>4</strong>" in response.content.decode()


def test_pause_then_resume_from_the_change_page(marketer_client: Client) -> None:
    campaign = make_campaign(Campaign.Status.SENDING)
    pause = reverse("admin:campaigns_campaign_action", args=[campaign.pk, "pause"])
    resume = reverse("admin:campaigns_campaign_action", args=[campaign.pk, "resume"])

    page = marketer_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert f'action="{pause}"' in page.content.decode()

    assert marketer_client.post(pause).status_code == 302
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.PAUSED

    marketer_client.post(resume)
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


def test_cancel_skips_the_queued_deliveries(marketer_client: Client) -> None:
    campaign = make_campaign(Campaign.Status.SENDING)
    add_deliveries(campaign, [("queued", "", 2), ("sent", "", 1)])

    marketer_client.post(reverse("admin:campaigns_campaign_action", args=[campaign.pk, "cancel"]))

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.CANCELLED
    assert sorted(campaign.deliveries.values_list("status", "reason")) == [
        ("sent", ""),
        ("skipped", "cancelled"),
        ("skipped", "cancelled"),
    ]


def test_a_get_to_an_action_changes_nothing(marketer_client: Client) -> None:
    campaign = make_campaign(Campaign.Status.SENDING)

    response = marketer_client.get(
        reverse("admin:campaigns_campaign_action", args=[campaign.pk, "pause"])
    )

    assert response.status_code == 405
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.SENDING


def test_the_campaign_list_shows_a_static_list_audience_by_name(marketer_client: Client) -> None:
    vip = StaticList.objects.create(name="VIP callback", slug="vip-callback")
    make_campaign(audience_list=vip)

    response = marketer_client.get(reverse("admin:campaigns_campaign_changelist"))

    assert response.status_code == 200
    assert "VIP callback" in response.content.decode()


# --- Read-only records ---------------------------------------------------------------------


def test_the_delivery_list_escapes_contact_names(marketer_client: Client) -> None:
    campaign = make_campaign()
    contact = ContactFactory.create(first_name="<img src=x onerror=alert(1)>")
    Delivery.objects.create(campaign=campaign, contact=contact, channel="email")

    content = marketer_client.get(reverse("admin:campaigns_delivery_changelist")).content.decode()

    assert "<img src=x" not in content
    assert "&lt;img src=x onerror=alert(1)&gt;" in content


def test_a_response_shows_provider_fields_escaped(marketer_client: Client) -> None:
    response_row = Response.objects.create(
        kind=Response.Kind.CLICKED,
        provider="postmark",
        url="https://shop.example/?q=<script>",
        payload={"UserAgent": "<script>alert(1)</script>"},
    )

    content = marketer_client.get(
        reverse("admin:campaigns_response_change", args=[response_row.pk])
    ).content.decode()

    assert "<script>alert(1)</script>" not in content
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in content


def test_a_marketer_can_read_but_not_change_frequency_caps(marketer_client: Client) -> None:
    cap = FrequencyCap.objects.get(channel="email", days=7)
    url = reverse("admin:campaigns_frequencycap_change", args=[cap.pk])

    assert marketer_client.get(url).status_code == 200
    marketer_client.post(url, {"channel": "email", "max_messages": "99", "days": "7"})

    cap.refresh_from_db()
    assert cap.max_messages == 3


def test_a_superuser_can_change_frequency_caps(superuser_client: Client) -> None:
    cap = FrequencyCap.objects.get(channel="email", days=7)
    url = reverse("admin:campaigns_frequencycap_change", args=[cap.pk])

    response = superuser_client.post(
        url, {"channel": "email", "max_messages": "5", "days": "7", "is_active": "on"}
    )

    assert response.status_code == 302
    cap.refresh_from_db()
    assert cap.max_messages == 5


def test_erased_contacts_are_not_offered_for_preview(marketer_client: Client) -> None:
    ContactFactory.create(first_name="Gone", is_erased=True)
    template = MessageTemplate.objects.create(name="t", channel="email", subject="s")
    url = reverse("admin:campaigns_messagetemplate_preview", args=[template.pk])

    response = marketer_client.get(url)

    assert chosen_contact(response) is None
    assert Contact.objects.count() == 1


# --- In a real browser ---------------------------------------------------------------------


def browser_login(page: Any, live_server: Any) -> None:
    User.objects.create_superuser("ada", "ada@example.com", "correct-horse-42")
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_progress_block_updates_by_itself_while_sending(live_server: Any, page: Any) -> None:
    campaign = make_campaign(Campaign.Status.SENDING)
    add_deliveries(campaign, [("queued", "", 2)])
    browser_login(page, live_server)
    page.goto(f"{live_server.url}{reverse('admin:campaigns_campaign_change', args=[campaign.pk])}")
    assert page.inner_text(".progress-queued") == "2"

    Delivery.objects.filter(campaign=campaign).update(status=Delivery.Status.SENT)

    page.wait_for_selector(".progress-sent", timeout=10_000)
    assert page.inner_text(".progress-sent") == "2"
    assert page.query_selector(".progress-queued") is None


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_sms_length_updates_while_typing(live_server: Any, page: Any) -> None:
    browser_login(page, live_server)
    page.goto(f"{live_server.url}{TEMPLATE_ADD}")

    page.fill("#id_sms_body", "a" * 161)
    assert page.inner_text("#sms-length-live").startswith("GSM-7, 161 characters, 2 segments")

    page.fill("#id_sms_body", "你好")
    assert page.inner_text("#sms-length-live").startswith("UCS-2, 2 characters, 1 segment")
