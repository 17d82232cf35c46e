"""Marketing email as it leaves the system: RFC 8058 headers, the footer with the postal
address, a readable text part, the delivery id for tracking; and what each provider failure
means, through the real anymail Postmark backend talking HTTP to a fake provider."""

from __future__ import annotations

import email
import json
import socket
import threading
from collections.abc import Iterator
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.urls import resolve

from campaigns import tokens
from campaigns.channels.base import ProviderError
from campaigns.channels.email import (
    build_email,
    email_connection,
    send_email,
)
from campaigns.models import Campaign, Delivery, MessageTemplate, Variant
from campaigns.rendering import render_message
from crm.models import Contact
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db


def make_delivery(
    *, contact: Contact | None = None, transactional: bool = False, **template_fields: Any
) -> Delivery:
    contact = contact or ContactFactory.create(first_name="Zoë", email="zoe@example.com")
    fields = {
        "name": "t",
        "channel": "email",
        "subject": "Still thinking it over, {{ contact.first_name|default:'there' }}?",
        "preheader": "Your basket is waiting",
        "html_body": '<p>Hi {{ contact.first_name }},</p><p>See <a href="https://shop.example/'
        'mug">the blue mug</a> again.</p>',
    }
    fields.update(template_fields)
    template = MessageTemplate.objects.create(**fields)
    campaign = Campaign.objects.create(
        name="Browse abandonment",
        slug=f"browse-{Campaign.objects.count()}",
        channel="email",
        is_transactional=transactional,
        from_email="Shop <hello@shop.example>",
        # The message as written: tracked links have their own tests (test_tracking_*.py).
        track_opens_clicks=False,
        utm_parameters=False,
    )
    variant = Variant.objects.create(campaign=campaign, template=template)
    return Delivery.objects.create(
        campaign=campaign,
        variant=variant,
        contact=contact,
        channel="email",
        to_address=contact.email or "",
    )


def built(delivery: Delivery) -> Any:
    assert delivery.variant is not None
    rendered = render_message(
        template=delivery.variant.template,
        contact=delivery.contact,
        campaign=delivery.campaign,
        delivery_id=delivery.pk,
    )
    return build_email(
        delivery=delivery, campaign=delivery.campaign, contact=delivery.contact, rendered=rendered
    )


def token_of(url: str) -> str:
    match = resolve(urlsplit(url).path)
    return str(match.args[0] if match.args else next(iter(match.kwargs.values())))


def html_part(message: Any) -> str:
    return next(content for content, mimetype in message.alternatives if mimetype == "text/html")


# --- Headers -------------------------------------------------------------------------------


def test_list_unsubscribe_is_a_signed_one_click_url_for_this_contact_and_delivery() -> None:
    delivery = make_delivery()

    message = built(delivery)

    header = message.extra_headers["List-Unsubscribe"]
    assert header.startswith("<http") and header.endswith(">")
    payload = tokens.unsubscribe_payload(token_of(header[1:-1]))
    assert payload == {"c": delivery.contact_id, "ch": "email", "p": "marketing", "d": delivery.pk}
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_list_unsubscribe_adds_a_mailto_only_when_configured(settings: Any) -> None:
    settings.UNSUBSCRIBE_MAILTO = "unsubscribe@shop.example"
    with_mailto = built(make_delivery()).extra_headers["List-Unsubscribe"]
    settings.UNSUBSCRIBE_MAILTO = ""
    without = built(make_delivery(contact=ContactFactory.create())).extra_headers[
        "List-Unsubscribe"
    ]

    assert with_mailto.endswith(", <mailto:unsubscribe@shop.example?subject=unsubscribe>")
    assert "mailto:" not in without


def test_a_transactional_email_has_no_unsubscribe_headers_or_footer(settings: Any) -> None:
    message = built(make_delivery(transactional=True))

    assert "List-Unsubscribe" not in message.extra_headers
    assert settings.SENDER_POSTAL_ADDRESS not in message.body


def test_the_subject_is_personalised_and_the_sender_comes_from_the_campaign() -> None:
    message = built(make_delivery())

    assert message.subject == "Still thinking it over, Zoë?"
    assert message.from_email == "Shop <hello@shop.example>"
    assert message.to == ["zoe@example.com"]


def test_the_delivery_id_is_in_anymail_metadata_tags_and_a_header() -> None:
    delivery = make_delivery()

    message = built(delivery)

    assert message.metadata == {"delivery_id": str(delivery.pk)}
    assert message.tags == [delivery.campaign.slug]
    assert message.extra_headers["X-Cadence-Delivery"] == str(delivery.pk)


# --- Bodies --------------------------------------------------------------------------------


def test_a_footer_with_unsubscribe_preferences_and_postal_address_is_appended(
    settings: Any,
) -> None:
    message = built(make_delivery())
    html = html_part(message)

    assert ">Unsubscribe</a>" in html
    assert ">Manage your preferences</a>" in html
    assert settings.SENDER_POSTAL_ADDRESS in html
    assert "Unsubscribe: http" in message.body
    assert "Manage your preferences: http" in message.body
    assert settings.SENDER_POSTAL_ADDRESS in message.body


def test_no_second_footer_when_the_template_places_the_unsubscribe_link_itself() -> None:
    message = built(
        make_delivery(
            html_body='<p>Hi</p><p><a href="{{ unsubscribe_url }}">Leave</a> {{ sender }}</p>'
        )
    )

    html = html_part(message)
    assert ">Leave</a>" in html
    assert "Manage your preferences" not in html
    assert ">Unsubscribe</a>" not in html


def test_the_text_part_is_derived_from_the_html_with_links_and_paragraphs() -> None:
    message = built(make_delivery())

    assert message.body.startswith(
        "Hi Zoë,\n\nSee the blue mug (https://shop.example/mug) again.\n\n--\n"
    )


def test_a_given_text_body_is_used_instead_of_the_html() -> None:
    message = built(make_delivery(text_body="Hi {{ contact.first_name }} & co"))

    assert message.body.startswith("Hi Zoë & co\n\n--\n")


def test_the_preheader_is_a_hidden_span_at_the_top_of_the_html() -> None:
    html = html_part(built(make_delivery(html_body="<html><body><p>Hi</p></body></html>")))

    body_start = html.index("<body>") + len("<body>")
    assert html[body_start:].startswith('<span style="display:none')
    assert "Your basket is waiting</span><p>Hi</p>" in html


def test_the_eml_written_by_the_file_backend_shows_headers_and_footer(outbox: Path) -> None:
    delivery = make_delivery()

    message_id = send_email(built(delivery))

    files = list((outbox / "email").glob("*.eml"))
    assert len(files) == 1
    parsed = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert parsed["X-Cadence-Delivery"] == str(delivery.pk)
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert parsed["Subject"] == "Still thinking it over, Zoë?"
    assert parsed["Message-ID"].strip("<>") == message_id
    text = parsed.get_body(preferencelist=("plain",))
    assert text is not None and "Unsubscribe: http" in text.get_content()


# --- Postmark through anymail against the fake provider -------------------------------------


@pytest.fixture
def postmark(settings: Any, fake_provider: Any) -> Any:
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": "x",
        "POSTMARK_API_URL": fake_provider.url + "/",
        "REQUESTS_TIMEOUT": 0.5,
    }
    return fake_provider


def test_postmark_receives_the_headers_metadata_and_personalised_subject(postmark: Any) -> None:
    delivery = make_delivery()

    message_id = send_email(built(delivery))

    assert len(postmark.requests) == 1
    sent = postmark.requests[0].json()
    assert sent["Subject"] == "Still thinking it over, Zoë?"
    assert sent["To"] == "zoe@example.com"
    assert sent["Metadata"] == {"delivery_id": str(delivery.pk)}
    assert sent["Tag"] == delivery.campaign.slug
    headers = {h["Name"]: h["Value"] for h in sent["Headers"]}
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert headers["List-Unsubscribe"].startswith("<http")
    assert "Manage your preferences" in sent["HtmlBody"]
    assert message_id and message_id != "None"


def test_one_connection_sends_a_whole_batch(postmark: Any) -> None:
    deliveries = [make_delivery(contact=ContactFactory.create()) for _ in range(3)]

    with email_connection() as connection:
        ids = [send_email(built(d), connection=connection) for d in deliveries]

    assert len(set(ids)) == 3
    assert len(postmark.requests) == 3


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_busy_or_failing_provider_is_retryable(postmark: Any, status: int) -> None:
    postmark.behaviour.script = [status]

    with pytest.raises(ProviderError) as caught:
        send_email(built(make_delivery()))

    assert caught.value.retryable and not caught.value.uncertain and not caught.value.permanent
    assert caught.value.code == f"http_{status}/100"


def test_a_connection_dropped_after_the_request_was_read_is_uncertain(postmark: Any) -> None:
    # requests raises ConnectionError("Connection aborted", RemoteDisconnected): the provider
    # read the whole request and may have queued the message, so it must not be resent blindly.
    postmark.behaviour.script = ["drop"]

    with pytest.raises(ProviderError) as caught:
        send_email(built(make_delivery()))

    assert caught.value.uncertain and not caught.value.retryable
    assert caught.value.code == "connection_dropped"


def test_no_answer_within_the_timeout_is_uncertain(postmark: Any) -> None:
    postmark.behaviour.delay_seconds = 2

    with pytest.raises(ProviderError) as caught:
        send_email(built(make_delivery()))

    assert caught.value.uncertain and not caught.value.retryable
    assert caught.value.code == "timeout"


def test_a_refused_connection_is_retryable(settings: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {
        "POSTMARK_SERVER_TOKEN": "x",
        "POSTMARK_API_URL": f"http://127.0.0.1:{port}/",
    }

    with pytest.raises(ProviderError) as caught:
        send_email(built(make_delivery()))

    assert caught.value.retryable and not caught.value.uncertain
    assert caught.value.code == "connection"


class _PostmarkRefusing:
    """Answers every send like Postmark does for an address it will not deliver to."""

    def __init__(self, answer: dict[str, Any]) -> None:
        body = json.dumps(answer).encode()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(422)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"


@pytest.fixture
def refusing(request: Any, settings: Any) -> Iterator[None]:
    server = _PostmarkRefusing(request.param)
    settings.EMAIL_BACKEND = "anymail.backends.postmark.EmailBackend"
    settings.ANYMAIL = {"POSTMARK_SERVER_TOKEN": "x", "POSTMARK_API_URL": server.url}
    yield
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.parametrize(
    "refusing",
    [
        {
            "ErrorCode": 406,
            "Message": "You tried to send to a recipient that has been marked as inactive.\n"
            "Found inactive addresses: zoe@example.com.\nInactive recipients are ones that "
            "have generated a hard bounce or a spam complaint.",
        },
        {"ErrorCode": 300, "Message": "Invalid 'To' address: 'zoe@example.com'."},
    ],
    indirect=True,
    ids=["inactive-406", "invalid-300"],
)
@pytest.mark.usefixtures("refusing")
def test_an_address_postmark_refuses_is_a_permanent_failure() -> None:
    with pytest.raises(ProviderError) as caught:
        send_email(built(make_delivery()))

    assert caught.value.permanent and not caught.value.retryable and not caught.value.uncertain
