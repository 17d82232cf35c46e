"""A marketer's preview never hands out a customer's working links: previews show inert
placeholders, and no render error (in the preview, on save or on a delivery) echoes the
context that holds the signed tokens."""

from __future__ import annotations

import html
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from campaigns import tokens
from campaigns.models import MessageTemplate
from campaigns.services.launch import campaign_launch
from campaigns.services.send import campaign_drain
from tests.campaigns.dispatch_helpers import campaign_for, deliveries, grant
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

# Anything shaped like a customer link's path: /u/<token>/, /u/<token>/one-click/ or
# /preferences/<token>/.
LINK = re.compile(r"/(u|preferences)/([^/\s\"'<>&]+)/")


def working_tokens(text: str) -> list[str]:
    """The tokens in the text (escaped or not) that the public pages would accept."""
    found = []
    for kind, token in LINK.findall(html.unescape(html.unescape(text))):
        if kind == "u" and tokens.unsubscribe_payload(token) is not None:
            found.append(token)
        if kind == "preferences" and tokens.preferences_contact_id(token) is not None:
            found.append(token)
    return found


def preview(client: Client, template: MessageTemplate, contact_id: int) -> str:
    url = reverse("admin:campaigns_messagetemplate_preview", args=[template.pk])
    response = client.get(url, {"contact": str(contact_id)})
    assert response.status_code == 200
    return response.content.decode()


def test_the_email_preview_shows_placeholder_links_and_no_working_token(
    marketer_client: Client,
) -> None:
    contact = ContactFactory.create(first_name="Ada")
    template = MessageTemplate.objects.create(
        name="t",
        channel="email",
        subject="Hi {{ contact.first_name }}",
        html_body='<p><a href="{{ preferences_url }}">Your choices</a></p>',
        text_body="Your choices: {{ preferences_url }}",
    )

    content = preview(marketer_client, template, contact.pk)

    assert working_tokens(content) == []
    assert "#preferences-link-preview" in content
    assert "Unsubscribe: #unsubscribe-link-preview" in content  # the standard text footer


def test_the_sms_preview_shows_a_placeholder_link(marketer_client: Client) -> None:
    contact = ContactFactory.create(phone="+14155550100")
    template = MessageTemplate.objects.create(
        name="s", channel="sms", sms_body="Opt out: {{ unsubscribe_url }}"
    )

    content = preview(marketer_client, template, contact.pk)

    assert working_tokens(content) == []
    assert "Opt out: #unsubscribe-link-preview" in content


@pytest.mark.parametrize(
    "source",
    [
        # A missing variable as a filter argument: Django's error lists the whole context.
        "{{ contact.first_name|add:forloop.counter }}",
        "{{ contact.first_name|default:unsubscribe_url.token }}",
        "{{ preferences_url|divisibleby:2 }}",
    ],
)
def test_a_preview_render_error_does_not_echo_the_context(
    marketer_client: Client, source: str
) -> None:
    contact = ContactFactory.create()
    # Saved past the form, as a template that broke after it was saved would be.
    template = MessageTemplate.objects.create(
        name="t", channel="email", subject="Hello", html_body=source
    )

    content = preview(marketer_client, template, contact.pk)

    assert 'class="errornote preview-error">HTML body:' in content
    assert working_tokens(content) == []
    assert "unsubscribe-link-preview" not in content.split("preview-error", 1)[1][:60]


def test_an_error_shown_when_saving_a_template_names_no_token(marketer_client: Client) -> None:
    ContactFactory.create()  # validation renders for the newest real contacts

    response = marketer_client.post(
        reverse("admin:campaigns_messagetemplate_add"),
        {
            "name": "t",
            "channel": "email",
            "subject": "Hello",
            "preheader": "",
            "html_body": "{{ contact.first_name|add:forloop.counter }}",
            "text_body": "",
            "sms_body": "",
        },
    )

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["html_body"]
    assert errors == ["'forloop' is not defined here"]
    assert working_tokens(response.content.decode()) == []


def test_a_render_error_recorded_on_a_delivery_names_no_token(settings: Any, outbox: Any) -> None:
    ada = ContactFactory.create()
    grant(ada)
    campaign = campaign_for([ada], html="<p>{{ unsubscribe_url|divisibleby:2 }}</p>")

    campaign_launch(campaign=campaign, enqueue=False)
    campaign_drain(campaign=campaign)

    delivery = deliveries(campaign)[ada.pk]
    assert delivery.reason == "render_error"
    assert working_tokens(delivery.error) == []
    assert delivery.error == (
        "HTML body: ValueError: invalid literal for int() with base 10: '[unsubscribe link]'"
    )
