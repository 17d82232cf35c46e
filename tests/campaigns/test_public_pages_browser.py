"""A real chromium follows the unsubscribe link from an email the system wrote."""

from __future__ import annotations

import email
import re
from pathlib import Path
from typing import Any

import pytest
from django.core.mail import send_mail

from campaigns.tokens import unsubscribe_url
from tests.campaigns.consent_helpers import grant, latest, status_of
from tests.factories import ContactFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

LINK = re.compile(r"(https?://\S+/u/[^/\s]+/)")


def link_from_outbox(folder: Path) -> str:
    [path] = sorted(folder.glob("*.eml"))
    message = email.message_from_bytes(path.read_bytes())
    body = message.get_payload(decode=True).decode()  # type: ignore[union-attr]
    match = LINK.search(body)
    assert match, body
    return match.group(1)


def mail_unsubscribe_link(contact: Any, *, purpose: str = "marketing") -> None:
    url = unsubscribe_url(contact_id=contact.pk, channel="email", purpose=purpose)
    send_mail(
        "Spring sale",
        f"Hi {contact.first_name},\n\n20% off this week.\n\nUnsubscribe: {url}\n",
        None,
        [contact.email],
    )


def test_a_person_unsubscribes_from_the_link_in_an_email(
    live_server: Any, settings: Any, outbox: Path, page: Any
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    contact = ContactFactory.create(first_name="Ada", email="ada@example.com")
    grant(contact)
    grant(contact, purpose="newsletter")
    mail_unsubscribe_link(contact)
    link = link_from_outbox(outbox / "email")

    page.goto(link)
    assert page.locator("h1").inner_text() == "Hello Ada, unsubscribe?"
    assert status_of(contact) == "granted"  # opening the link changed nothing
    page.get_by_role("button", name="Stop sending me “News and offers” emails.").click()

    assert page.locator("h1").inner_text() == "You are unsubscribed"
    assert "a•••@example.com" in page.get_by_role("status").inner_text()
    assert status_of(contact) == "withdrawn"
    assert status_of(contact, purpose="newsletter") == "granted"
    entry = latest(contact)
    assert entry.source == "unsubscribe_link"
    assert entry.ip_address == "127.0.0.1"
    assert "Chrome" in entry.user_agent

    page.get_by_role("button", name="Send me “News and offers” emails again.").click()
    assert page.locator("h1").inner_text() == "You are subscribed again"
    assert status_of(contact) == "granted"


def test_a_chinese_contact_unsubscribes_from_everything_in_chinese(
    live_server: Any, settings: Any, outbox: Path, page: Any
) -> None:
    settings.PUBLIC_BASE_URL = live_server.url
    contact = ContactFactory.create(first_name="明", email="ming@example.com", locale="zh-Hans")
    grant(contact)
    grant(contact, purpose="offers")
    mail_unsubscribe_link(contact, purpose="offers")

    page.goto(link_from_outbox(outbox / "email"))
    assert page.locator("html").get_attribute("lang") == "zh-hans"
    page.get_by_role("button", name="退订所有营销邮件。").click()

    assert page.locator("h1").inner_text() == "您已退订"
    assert status_of(contact) == "withdrawn"
    assert status_of(contact, purpose="offers") == "withdrawn"
    assert latest(contact).text == "退订所有营销邮件。"


def test_the_preference_centre_is_usable_with_the_keyboard(
    live_server: Any, settings: Any, page: Any
) -> None:
    from campaigns.tokens import preferences_url

    settings.PUBLIC_BASE_URL = live_server.url
    contact = ContactFactory.create(first_name="Ada")
    grant(contact)

    page.goto(preferences_url(contact_id=contact.pk))
    page.get_by_label("Yes, send me “Newsletter” by email.").focus()
    page.keyboard.press("Space")
    page.get_by_label("Need a break?").select_option("2")
    page.get_by_role("button", name="Save my choices").press("Enter")

    assert page.get_by_role("status").first.inner_text() == "Your choices are saved."
    assert status_of(contact, purpose="newsletter") == "granted"
    contact.refresh_from_db()
    assert contact.marketing_paused_until is not None
