"""Double opt-in through the public pages: subscribe, the emailed link, confirm."""

from __future__ import annotations

import datetime as dt
import email
import email.header
import re
from collections.abc import Callable, Iterator
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from crm.models import ConsentRecord, Contact, DoubleOptIn, Suppression
from crm.normalise import address_hash
from crm.selectors import consent_current
from crm.services.optin import optin_expire_pending
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

CONFIRM_LINK = re.compile(r"(https?://[^\s\"<>]+/subscribe/confirm/([^/\s\"<>]+)/)")
ZH_CONSENT = "是的，每周给我发邮件。"  # noqa: RUF001 (a Chinese comma)


@pytest.fixture
def eager(settings: Any, outbox: Path) -> Path:
    """Celery runs the confirmation task in-process; mail lands in the test's outbox."""
    settings.CELERY_TASK_ALWAYS_EAGER = True
    settings.PUBLIC_BASE_URL = "https://shop.example"
    return outbox / "email"


@pytest.fixture
def subscribe(client: Client, django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    def post(HTTP_ACCEPT_LANGUAGE: str = "en", **data: Any) -> Any:
        data.setdefault("consent", "on")
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                "/subscribe/",
                data,
                REMOTE_ADDR="198.51.100.4",
                HTTP_USER_AGENT="Subscriber/1.0",
                HTTP_ACCEPT_LANGUAGE=HTTP_ACCEPT_LANGUAGE,
            )

    return post


def messages_in(folder: Path) -> list[Message]:
    if not folder.exists():
        return []
    return [email.message_from_bytes(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def text_of(message: Message) -> str:
    parts: Iterator[Message] = message.walk()
    return "\n".join(
        part.get_payload(decode=True).decode()  # type: ignore[union-attr]
        for part in parts
        if part.get_content_maintype() == "text"
    )


def confirm_path(folder: Path) -> str:
    [message] = messages_in(folder)
    match = CONFIRM_LINK.search(text_of(message))
    assert match, text_of(message)
    return match.group(1).removeprefix("https://shop.example")


# --- Subscribe --------------------------------------------------------------------------------


def test_subscribe_form_shows_labelled_fields_and_the_consent_text(
    client: Client, settings: Any
) -> None:
    settings.SUBSCRIBE_CONSENT_TEXT = "Send me the weekly letter & offers."

    response = client.get("/subscribe/")

    body = response.content.decode()
    assert response.status_code == 200
    assert '<label for="id_email">' in body
    assert '<label for="id_consent">Send me the weekly letter &amp; offers.</label>' in body
    assert 'name="viewport"' in body
    assert "csrfmiddlewaretoken" in body


def test_subscribe_emails_a_signed_confirm_link_and_records_a_pending_request(
    eager: Path, subscribe: Callable[..., Any]
) -> None:
    response = subscribe(email="Grace.Hopper@Example.com", first_name="Grace")

    assert response.status_code == 200
    assert "G•••@example.com" in response.content.decode()
    [message] = messages_in(eager)
    assert message["To"] == "Grace.Hopper@example.com"
    assert confirm_path(eager).startswith("/subscribe/confirm/")
    optin = DoubleOptIn.objects.get()
    assert optin.status == DoubleOptIn.Status.PENDING
    assert optin.contact.first_name == "Grace"
    assert optin.request_ip == "198.51.100.4"
    expected_expiry = optin.requested_at + dt.timedelta(hours=72)
    assert abs((optin.expires_at - expected_expiry).total_seconds()) < 1


def test_subscribe_finds_an_existing_contact_by_email_without_duplicating_it(
    eager: Path, subscribe: Callable[..., Any]
) -> None:
    existing = ContactFactory.create(email="grace@example.com", first_name="Grace")

    subscribe(email="GRACE@example.COM", first_name="Mallory")

    assert Contact.objects.count() == 1
    assert DoubleOptIn.objects.get().contact_id == existing.pk
    # An unconfirmed request never renames anyone.
    assert Contact.objects.get().first_name == "Grace"


def test_subscribe_with_a_suppressed_address_answers_the_same_and_sends_nothing(
    eager: Path, subscribe: Callable[..., Any]
) -> None:
    Suppression.objects.create(
        channel="email", address_hash=address_hash("email", "eve@example.com"), reason="manual"
    )

    suppressed_page = subscribe(email="eve@example.com").content.decode()
    other_page = subscribe(email="adam@example.com").content.decode()

    assert suppressed_page.replace("e•••@", "X") == other_page.replace("a•••@", "X")
    assert len(messages_in(eager)) == 1
    assert not Contact.objects.filter(email_key="eve@example.com").exists()


def test_subscribe_without_ticking_consent_shows_an_error_and_sends_nothing(
    eager: Path, client: Client
) -> None:
    response = client.post("/subscribe/", {"email": "grace@example.com"})

    assert response.status_code == 200
    assert "Please tick the box" in response.content.decode()
    assert not DoubleOptIn.objects.exists()


def test_subscribe_with_a_bad_email_names_the_field(eager: Path, client: Client) -> None:
    response = client.post("/subscribe/", {"email": "not an email", "consent": "on"})

    body = response.content.decode()
    assert 'aria-invalid="true" aria-describedby="email-errors"' in body
    assert "Enter a valid email address." in body


def test_the_html_form_refuses_a_post_without_a_csrf_token(eager: Path) -> None:
    client = Client(enforce_csrf_checks=True)

    response = client.post("/subscribe/", {"email": "grace@example.com", "consent": "on"})

    assert response.status_code == 403
    assert not DoubleOptIn.objects.exists()


def test_the_html_form_accepts_the_token_from_its_own_page(
    eager: Path, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/subscribe/").content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/subscribe/",
            {"email": "grace@example.com", "consent": "on", "csrfmiddlewaretoken": token.group(1)},
        )

    assert response.status_code == 200
    assert DoubleOptIn.objects.count() == 1


def test_json_subscribe_needs_no_csrf_token_and_answers_202(
    eager: Path, django_capture_on_commit_callbacks: Any
) -> None:
    client = Client(enforce_csrf_checks=True)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/subscribe/",
            {"email": "grace@example.com", "first_name": "Grace", "consent": True},
            content_type="application/json",
        )

    assert response.status_code == 202
    assert response.json()["status"] == "pending"
    assert len(messages_in(eager)) == 1


def test_json_subscribe_names_each_bad_field(eager: Path, client: Client) -> None:
    response = client.post(
        "/subscribe/", {"email": "nope", "consent": False}, content_type="application/json"
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "nope" in errors["email"][0]
    assert "consent" in errors


def test_the_confirmation_email_never_greets_by_the_name_typed_on_the_form(
    eager: Path, subscribe: Callable[..., Any]
) -> None:
    """Anyone can type anything as the name for someone else's address."""
    subscribe(email="eve@example.com", first_name="Win $$$ at http://evil.example")

    [message] = messages_in(eager)
    body = text_of(message) + str(message["Subject"])
    assert "evil.example" not in body
    assert "Win $$$" not in body
    assert "Hello," in body


def test_json_subscribe_refuses_a_consent_text_chosen_by_the_caller(
    eager: Path, client: Client
) -> None:
    response = client.post(
        "/subscribe/",
        {
            "email": "grace@example.com",
            "consent": True,
            "consent_text": "I agree to anything.",
            "consent_text_version": "mine",
        },
        content_type="application/json",
    )

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert "consent_text" in errors and "consent_text_version" in errors
    assert "configured" in errors["consent_text"][0]
    assert not DoubleOptIn.objects.exists()


def test_json_subscribe_records_the_configured_consent_text(
    eager: Path, client: Client, settings: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.SUBSCRIBE_CONSENT_TEXT = "Weekly letter, please."
    settings.SUBSCRIBE_CONSENT_VERSION = "letter-7"

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            "/subscribe/",
            {"email": "grace@example.com", "consent": True},
            content_type="application/json",
        )
    client.post(confirm_path(eager))

    record = ConsentRecord.objects.get()
    assert (record.text, record.text_version, record.language) == (
        "Weekly letter, please.",
        "letter-7",
        "en",
    )


# --- Simplified Chinese -----------------------------------------------------------------------


def test_the_form_shows_the_chinese_consent_text_to_a_chinese_browser(
    client: Client, settings: Any
) -> None:
    settings.SUBSCRIBE_CONSENT_TEXT_ZH_HANS = ZH_CONSENT

    response = client.get("/subscribe/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    body = response.content.decode()
    assert "订阅我们的新闻通讯" in body
    assert f'<label for="id_consent">{ZH_CONSENT}</label>' in body


def test_a_chinese_subscriber_gets_the_confirmation_email_in_chinese(
    eager: Path, subscribe: Callable[..., Any]
) -> None:
    subscribe(email="li@example.com", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    [message] = messages_in(eager)
    subject = email.header.make_header(email.header.decode_header(message["Subject"]))
    assert str(subject) == "请确认您的订阅"
    body = text_of(message)
    assert "请打开此链接" in body
    assert "Please confirm" not in body
    assert DoubleOptIn.objects.get().language == "zh-hans"


def test_a_chinese_subscriber_confirms_on_a_chinese_page_and_the_chinese_text_is_recorded(
    eager: Path, subscribe: Callable[..., Any], client: Client, settings: Any
) -> None:
    settings.SUBSCRIBE_CONSENT_TEXT_ZH_HANS = ZH_CONSENT
    subscribe(email="li@example.com", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")
    path = confirm_path(eager)

    # The link is opened in a browser set to English: the page keeps the language the
    # person subscribed in, since it shows the words they agree to.
    page = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
    done = client.post(path, HTTP_ACCEPT_LANGUAGE="en")

    assert ZH_CONSENT in page.content.decode()
    assert page["Content-Language"] == "zh-hans"
    assert done.status_code == 200 and done["Content-Language"] == "zh-hans"
    record = ConsentRecord.objects.get()
    assert (record.text, record.language) == (ZH_CONSENT, "zh-hans")


# --- Confirm ----------------------------------------------------------------------------------


def test_opening_the_link_shows_a_button_and_changes_nothing(
    eager: Path, subscribe: Callable[..., Any], client: Client
) -> None:
    subscribe(email="grace.hopper@example.com", first_name="Grace")

    response = client.get(confirm_path(eager))

    body = response.content.decode()
    assert response.status_code == 200
    assert "<button" in body and 'method="post"' in body
    assert "g•••@example.com" in body
    assert "grace.hopper" not in body
    # The name was typed by whoever asked, who need not be the person: never shown.
    assert "Grace" not in body
    assert DoubleOptIn.objects.get().status == DoubleOptIn.Status.PENDING
    assert not ConsentRecord.objects.exists()


def test_pressing_the_button_records_consent_with_proof_of_both_requests(
    eager: Path, subscribe: Callable[..., Any], client: Client, settings: Any
) -> None:
    settings.SUBSCRIBE_CONSENT_TEXT = "Weekly letter, please."
    settings.SUBSCRIBE_CONSENT_VERSION = "letter-7"
    subscribe(email="grace@example.com")
    path = confirm_path(eager)

    response = client.post(path, REMOTE_ADDR="192.0.2.9", HTTP_USER_AGENT="Phone/2.0")

    assert response.status_code == 200
    assert "is subscribed" in response.content.decode()
    optin = DoubleOptIn.objects.get()
    assert optin.status == DoubleOptIn.Status.CONFIRMED
    record = ConsentRecord.objects.get()
    assert (record.source, record.status, record.channel) == ("double_opt_in", "granted", "email")
    assert (record.text, record.text_version) == ("Weekly letter, please.", "letter-7")
    assert (record.ip_address, record.user_agent) == ("192.0.2.9", "Phone/2.0")
    assert record.proof == {
        "optin_id": optin.pk,
        "requested_at": optin.requested_at.isoformat(),
        "request_ip": "198.51.100.4",
        "request_user_agent": "Subscriber/1.0",
        "confirm_ip": "192.0.2.9",
        "confirm_user_agent": "Phone/2.0",
    }
    assert consent_current([optin.contact_id])[optin.contact_id] == {
        ("email", "marketing"): "granted"
    }


def test_a_used_link_says_already_confirmed_and_records_consent_once(
    eager: Path, subscribe: Callable[..., Any], client: Client
) -> None:
    subscribe(email="grace@example.com")
    path = confirm_path(eager)
    client.post(path)

    again = client.post(path)

    assert again.status_code == 200
    assert "Already confirmed" in again.content.decode()
    assert ConsentRecord.objects.count() == 1


def test_tampered_expired_and_unknown_links_get_the_same_404(
    eager: Path, subscribe: Callable[..., Any], client: Client
) -> None:
    subscribe(email="grace@example.com")
    path = confirm_path(eager)
    token = path.split("/")[-2]
    tampered = path.replace(token, token[:-1] + ("A" if token[-1] != "A" else "B"))

    answers = [client.get(tampered), client.post(tampered), client.get("/subscribe/confirm/x/")]
    DoubleOptIn.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    answers += [client.get(path), client.post(path)]

    assert {a.status_code for a in answers} == {404}
    assert len({a.content for a in answers}) == 1
    assert not ConsentRecord.objects.exists()


def test_a_link_past_expiry_stays_dead_after_the_sweep(
    eager: Path, subscribe: Callable[..., Any], client: Client
) -> None:
    subscribe(email="grace@example.com")
    path = confirm_path(eager)
    DoubleOptIn.objects.update(expires_at=timezone.now() - dt.timedelta(minutes=1))

    assert optin_expire_pending() == 1
    assert client.post(path).status_code == 404
    assert not ConsentRecord.objects.exists()
