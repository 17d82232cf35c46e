"""Rendering is bounded: a template that would make a huge value, loop too deep or too long,
or render a message past the size cap is refused when saved or stopped while rendering, and a
message over the cap is never sent. Saving a hostile template never takes seconds or
gigabytes."""

from __future__ import annotations

import datetime as dt
import time
import tracemalloc
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from campaigns.models import Campaign, Delivery, MessageTemplate
from campaigns.rendering import RenderError, render_message
from campaigns.services.launch import campaign_launch
from campaigns.services.send import campaign_drain
from crm.models import Contact
from tests.campaigns.dispatch_helpers import (
    campaign_for,
    deliveries,
    emails_to,
    grant,
    use_postmark,
)
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

TEMPLATE_ADD = reverse("admin:campaigns_messagetemplate_add")


def save_template(client: Client, **fields: str) -> Any:
    data = {
        "name": "Hostile",
        "channel": "email",
        "subject": "Hello",
        "preheader": "",
        "html_body": "<p>Hi</p>",
        "text_body": "",
        "sms_body": "",
    }
    data.update(fields)
    return client.post(TEMPLATE_ADD, data)


def html_errors(response: Any) -> list[str]:
    errors: list[str] = response.context["adminform"].form.errors.get("html_body", [])
    return errors


def render(source: str, contact: Contact, *, channel: str = "email") -> Any:
    template = MessageTemplate(
        name="t",
        channel=channel,
        subject="Hello",
        html_body=source if channel == "email" else "",
        sms_body=source if channel == "sms" else "",
    )
    campaign = Campaign(name="c", slug="c", channel=channel)
    return render_message(template=template, contact=contact, campaign=campaign, recent={})


# --- Refused when saved ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ljust", "center", "rjust"])
def test_a_padding_filter_wider_than_the_limit_is_refused_when_saved(
    marketer_client: Client, name: str
) -> None:
    response = save_template(
        marketer_client, html_body=f'<p>{{{{ contact.first_name|{name}:"50000000" }}}}</p>'
    )

    assert response.status_code == 200
    assert html_errors(response) == [
        f"|{name} allows at most 200 characters, not 50000000 (line 1)"
    ]
    assert f"|{name} allows at most 200 characters" in response.content.decode()
    assert MessageTemplate.objects.count() == 0


def test_a_padding_width_taken_from_contact_data_is_refused_when_saved(
    marketer_client: Client,
) -> None:
    response = save_template(
        marketer_client, html_body="{{ contact.first_name|ljust:contact.attributes.width }}"
    )

    assert html_errors(response) == [
        "|ljust needs a number written in the template, not a variable (line 1)"
    ]


def test_a_stringformat_width_over_the_limit_is_refused_when_saved(
    marketer_client: Client,
) -> None:
    response = save_template(
        marketer_client, html_body='{{ contact.first_name|stringformat:"50000000s" }}'
    )

    assert html_errors(response) == [
        "|stringformat allows at most 200 characters, not 50000000 (line 1)"
    ]


def test_a_floatformat_precision_over_the_limit_is_refused_when_saved(
    marketer_client: Client,
) -> None:
    response = save_template(
        marketer_client, html_body='{{ last_order.value|floatformat:"50000000" }}'
    )

    assert html_errors(response) == [
        "|floatformat allows at most 200 decimal places, not 50000000 (line 1)"
    ]


def test_three_nested_loops_are_refused_when_saved(marketer_client: Client) -> None:
    source = (
        "{% for a in contact.attributes.tags %}{% for b in contact.attributes.tags %}"
        "{% for c in contact.attributes.tags %}x{% endfor %}{% endfor %}{% endfor %}"
    )

    response = save_template(marketer_client, html_body=source)

    assert html_errors(response) == [
        "{% for %} loops can be nested at most 2 deep; this one is 3 deep (line 1)"
    ]


def test_two_nested_loops_are_allowed(marketer_client: Client) -> None:
    source = (
        "{% for a in contact.attributes.tags %}{% for b in contact.attributes.tags %}"
        "{{ a }}{{ b }}{% endfor %}{% endfor %}"
    )

    response = save_template(marketer_client, html_body=source)

    assert response.status_code == 302
    assert MessageTemplate.objects.count() == 1


def test_saving_the_issues_hostile_templates_takes_neither_seconds_nor_gigabytes(
    marketer_client: Client,
) -> None:
    seven_loops = "".join("{% for x" + str(i) + " in contact.attributes.tags %}" for i in range(7))
    seven_loops += "x" + "{% endfor %}" * 7
    tracemalloc.start()
    started = time.monotonic()
    try:
        first = save_template(
            marketer_client, html_body='{{ contact.first_name|ljust:"500000000" }}'
        )
        second = save_template(marketer_client, html_body=seven_loops)
        elapsed = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert html_errors(first) and html_errors(second)
    assert elapsed < 3
    assert peak < 50_000_000


# --- Stopped while rendering -----------------------------------------------------------------


def test_a_loop_over_a_big_list_in_the_context_stops_at_the_iteration_limit() -> None:
    contact = ContactFactory.create(attributes={"tags": list(range(100_000))})

    with pytest.raises(RenderError) as caught:
        render("{% for t in contact.attributes.tags %}{{ t }},{% endfor %}", contact)

    assert str(caught.value) == (
        "HTML body: loops ran more than 10000 times in all (RENDER_MAX_LOOP_ITERATIONS)"
    )


def test_nested_loops_count_every_inner_iteration() -> None:
    contact = ContactFactory.create(attributes={"tags": list(range(200))})

    with pytest.raises(RenderError, match="loops ran more than 10000 times"):
        render(
            "{% for a in contact.attributes.tags %}{% for b in contact.attributes.tags %}"
            "{% endfor %}{% endfor %}",
            contact,
        )


def test_loop_output_past_the_email_cap_stops_while_rendering(settings: Any) -> None:
    settings.RENDER_MAX_EMAIL_BYTES = 100_000
    contact = ContactFactory.create(attributes={"tags": list(range(1_000)), "blob": "x" * 1_000})

    with pytest.raises(RenderError) as caught:
        render(
            "{% for t in contact.attributes.tags %}{{ contact.attributes.blob }}{% endfor %}",
            contact,
        )

    assert str(caught.value) == (
        "HTML body: the rendered text passes the limit of 100000 characters"
        " (RENDER_MAX_EMAIL_BYTES)"
    )


def test_filters_that_double_a_value_cannot_grow_it_past_the_cap() -> None:
    # Each |addslashes doubles the backslashes: 14 of them turn 100 into 1.6 million.
    contact = ContactFactory.create(attributes={"s": "\\" * 100})

    with pytest.raises(RenderError, match="passes the limit of 1000000 characters"):
        render("{{ contact.attributes.s" + "|addslashes" * 14 + " }}", contact)


def test_a_message_under_the_caps_renders_as_before() -> None:
    contact = ContactFactory.create(first_name="Ada", attributes={"tags": ["mugs", "tea"]})

    rendered = render(
        '{% for t in contact.attributes.tags %}{{ t|ljust:"6" }}|{% endfor %}'
        '{{ contact.first_name|center:"9" }}',
        contact,
    )

    assert rendered.html.startswith("mugs  |tea   |   Ada   ")


# --- Never sent when over the cap ------------------------------------------------------------


@pytest.fixture
def postmark(settings: Any, fake_provider: Any) -> Any:
    use_postmark(settings, fake_provider.url, timeout=1)
    return fake_provider


def test_an_email_over_the_size_cap_is_skipped_with_the_reason(
    postmark: Any, settings: Any
) -> None:
    settings.RENDER_MAX_EMAIL_BYTES = 50_000
    ada = ContactFactory.create(attributes={"story": "é" * 30_000})
    grant(ada)
    campaign = campaign_for([ada], html="<p>{{ contact.attributes.story }}</p>")

    campaign_launch(campaign=campaign, enqueue=False)
    campaign_drain(campaign=campaign)

    delivery = deliveries(campaign)[ada.pk]
    assert (delivery.status, delivery.reason) == (Delivery.Status.SKIPPED, "render_error")
    assert "over the limit of 50000 bytes (RENDER_MAX_EMAIL_BYTES)" in delivery.error
    assert emails_to(postmark) == []


def test_an_sms_over_1600_characters_is_not_sent(outbox: Any) -> None:
    ada = ContactFactory.create(
        phone="+14155550100", timezone="UTC", attributes={"story": "a" * 1_590}
    )
    grant(ada, channel="sms")
    campaign = campaign_for([ada], channel="sms", sms="{{ contact.attributes.story }}")

    campaign_launch(campaign=campaign, enqueue=False)
    campaign_drain(campaign=campaign, now=dt.datetime(2026, 6, 1, 12, tzinfo=dt.UTC))

    delivery = deliveries(campaign)[ada.pk]
    assert (delivery.status, delivery.reason) == (Delivery.Status.SKIPPED, "render_error")
    # 1,590 characters, a full stop and the opt-out sentence appended to a marketing SMS.
    assert delivery.error == (
        "SMS body: the SMS would be 1614 characters with the opt-out text, over the limit of "
        "1600 (RENDER_MAX_SMS_CHARS)"
    )
    assert not (outbox / "sms.jsonl").exists()
