"""The preference centre: consent per channel and topic, and a pause."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.tokens import preferences_url
from crm.models import ConsentRecord, Contact
from tests.campaigns.consent_helpers import grant, status_of
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

BASE = "https://shop.example"


@pytest.fixture(autouse=True)
def public_base(settings: Any) -> None:
    settings.PUBLIC_BASE_URL = BASE
    settings.CONSENT_TOPICS = ["marketing", "newsletter", "offers"]


def open_form(client: Client, contact: Contact) -> tuple[str, str]:
    path = preferences_url(contact_id=contact.pk).removeprefix(BASE)
    page = client.get(path).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, page
    return path, match.group(1)


def test_the_page_shows_a_box_per_channel_and_topic_ticked_as_consented() -> None:
    contact = ContactFactory.create(first_name="Ada", email="ada@example.com", phone="+14155550123")
    grant(contact, purpose="newsletter")

    body = Client().get(preferences_url(contact_id=contact.pk).removeprefix(BASE)).content.decode()

    assert "Ada, your preferences" in body
    assert "a•••@example.com" in body and "•••• 0123" in body
    assert "ada@example.com" not in body and "+14155550123" not in body
    assert re.search(r'name="email:newsletter" id="consent-email-newsletter" checked', body)
    assert re.search(r'name="email:offers" id="consent-email-offers">', body)
    assert 'name="sms:marketing"' in body
    assert (
        '<label for="consent-email-newsletter">Yes, send me “Newsletter” by email.</label>' in body
    )


def test_saving_writes_only_the_changes_with_each_boxs_words() -> None:
    contact = ContactFactory.create()
    grant(contact, purpose="newsletter")
    client = Client(enforce_csrf_checks=True)
    path, token = open_form(client, contact)

    response = client.post(
        path,
        {"csrfmiddlewaretoken": token, "email:offers": "on", "pause": ""},
        REMOTE_ADDR="203.0.113.5",
        HTTP_USER_AGENT="Phone/2",
    )

    assert response.status_code == 302
    assert "Your choices are saved." in client.get(response["Location"]).content.decode()
    assert status_of(contact, purpose="newsletter") == "withdrawn"
    assert status_of(contact, purpose="offers") == "granted"
    assert status_of(contact, purpose="marketing") == "none"
    offers = ConsentRecord.objects.get(contact=contact, purpose="offers")
    assert offers.source == ConsentRecord.Source.PREFERENCE_CENTER
    assert offers.text == "Yes, send me “Special offers” by email."
    assert (offers.ip_address, offers.user_agent) == ("203.0.113.5", "Phone/2")
    assert ConsentRecord.objects.filter(contact=contact).count() == 3


def test_saving_the_same_choices_again_writes_nothing() -> None:
    contact = ContactFactory.create()
    grant(contact, purpose="newsletter")
    client = Client()
    path, _ = open_form(client, contact)

    client.post(path, {"email:newsletter": "on"})

    assert ConsentRecord.objects.filter(contact=contact).count() == 1


@pytest.mark.parametrize("weeks", [1, 2, 4, 8])
def test_pausing_sets_the_date_marketing_resumes(weeks: int) -> None:
    contact = ContactFactory.create()
    client = Client()
    path, _ = open_form(client, contact)

    client.post(path, {"pause": str(weeks)})

    contact.refresh_from_db()
    assert contact.marketing_paused_until is not None
    expected = timezone.now() + dt.timedelta(weeks=weeks)
    assert abs((contact.marketing_paused_until - expected).total_seconds()) < 60
    assert "Marketing is paused until" in client.get(path).content.decode()


def test_resume_now_ends_a_pause() -> None:
    contact = ContactFactory.create(marketing_paused_until=timezone.now() + dt.timedelta(days=9))
    client = Client()
    path, _ = open_form(client, contact)

    client.post(path, {"pause": "0"})

    contact.refresh_from_db()
    assert contact.marketing_paused_until is None


def test_a_pause_length_not_offered_is_refused_naming_the_choices() -> None:
    contact = ContactFactory.create()
    grant(contact)
    client = Client()
    path, _ = open_form(client, contact)

    response = client.post(path, {"pause": "52"})

    assert response.status_code == 400
    assert "Choose a pause of 1, 2, 4 or 8 weeks." in response.content.decode()
    contact.refresh_from_db()
    assert contact.marketing_paused_until is None
    assert status_of(contact) == "granted"


def test_a_post_without_the_forms_csrf_token_is_refused() -> None:
    contact = ContactFactory.create()
    grant(contact)
    path = preferences_url(contact_id=contact.pk).removeprefix(BASE)

    response = Client(enforce_csrf_checks=True).post(path, {})

    assert response.status_code == 403
    assert status_of(contact) == "granted"


def test_topics_come_from_settings(settings: Any) -> None:
    settings.CONSENT_TOPICS = ["vip_club"]
    contact = ContactFactory.create()

    body = Client().get(preferences_url(contact_id=contact.pk).removeprefix(BASE)).content.decode()

    assert 'name="email:vip_club"' in body
    assert "Yes, send me “Vip club” by email." in body
    assert 'name="email:newsletter"' not in body


def test_a_chinese_locale_contact_sees_the_preferences_in_chinese() -> None:
    contact = ContactFactory.create(locale="zh-CN")

    body = Client().get(preferences_url(contact_id=contact.pk).removeprefix(BASE)).content.decode()

    assert '<html lang="zh-hans">' in body
    assert "保存我的选择" in body


def test_a_tampered_preferences_link_gets_the_common_404() -> None:
    contact = ContactFactory.create()
    path = preferences_url(contact_id=contact.pk).removeprefix(BASE)

    tampered = Client().get(path[:-3] + "x/")
    nonsense = Client().get("/u/nonsense/")

    assert tampered.status_code == 404
    assert tampered.content == nonsense.content


def test_an_attacker_controlled_first_name_is_shown_escaped() -> None:
    contact = ContactFactory.create(first_name="<img src=x onerror=alert(1)>")

    body = Client().get(preferences_url(contact_id=contact.pk).removeprefix(BASE)).content.decode()

    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
