"""The unsubscribe page and the RFC 8058 one-click endpoint."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from unittest import mock

import pytest
from django.core import signing
from django.test import Client

from campaigns.models import Response
from campaigns.tokens import one_click_unsubscribe_url, unsubscribe_url
from crm.models import ConsentRecord
from tests.campaigns.consent_helpers import delivery_for, grant, latest, status_of
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db

BASE = "https://shop.example"


@pytest.fixture(autouse=True)
def public_base(settings: Any) -> None:
    settings.PUBLIC_BASE_URL = BASE


def path_of(url: str) -> str:
    return url.removeprefix(BASE)


def csrf_client_page(client: Client, path: str) -> str:
    """Open the page like a browser and return the CSRF token of its form."""
    page = client.get(path).content.decode()
    match = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert match, page
    return match.group(1)


def test_opening_the_link_shows_both_choices_and_changes_nothing() -> None:
    contact = ContactFactory.create(first_name="Ada", email="ada@example.com")
    grant(contact, purpose="newsletter")
    url = unsubscribe_url(contact_id=contact.pk, channel="email", purpose="newsletter")

    response = Client().get(path_of(url))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Hello Ada" in body
    assert "a•••@example.com" in body
    assert "ada@example.com" not in body
    assert "Stop sending me “Newsletter” emails." in body
    assert "Stop all marketing emails." in body
    assert status_of(contact, purpose="newsletter") == "granted"
    assert ConsentRecord.objects.filter(contact=contact).count() == 1


def test_confirming_one_topic_withdraws_only_that_topic_with_the_words_shown() -> None:
    contact = ContactFactory.create()
    grant(contact, purpose="newsletter")
    grant(contact, purpose="offers")
    path = path_of(unsubscribe_url(contact_id=contact.pk, channel="email", purpose="newsletter"))
    client = Client(enforce_csrf_checks=True)
    token = csrf_client_page(client, path)

    response = client.post(
        path,
        {"scope": "topic", "csrfmiddlewaretoken": token},
        REMOTE_ADDR="203.0.113.9",
        HTTP_USER_AGENT="Browser/1.0",
    )

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    assert status_of(contact, purpose="newsletter") == "withdrawn"
    assert status_of(contact, purpose="offers") == "granted"
    entry = latest(contact)
    assert entry.source == ConsentRecord.Source.UNSUBSCRIBE_LINK
    assert entry.text == "Stop sending me “Newsletter” emails."
    assert entry.text_version
    assert entry.ip_address == "203.0.113.9"
    assert entry.user_agent == "Browser/1.0"


def test_confirming_all_withdraws_every_marketing_topic_on_the_channel_only() -> None:
    contact = ContactFactory.create(phone="+14155550123")
    for purpose in ("marketing", "newsletter", "offers", "vip_club"):
        grant(contact, purpose=purpose)
    grant(contact, channel="sms")
    path = path_of(unsubscribe_url(contact_id=contact.pk, channel="email", purpose="newsletter"))

    Client().post(path, {"scope": "all"})

    for purpose in ("marketing", "newsletter", "offers", "vip_club"):
        assert status_of(contact, purpose=purpose) == "withdrawn"
    assert status_of(contact, channel="sms") == "granted"


def test_a_post_without_the_pages_csrf_token_is_refused_and_changes_nothing() -> None:
    contact = ContactFactory.create()
    grant(contact)
    path = path_of(unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing"))

    response = Client(enforce_csrf_checks=True).post(path, {"scope": "all"})

    assert response.status_code == 403
    assert status_of(contact) == "granted"


def test_the_result_page_offers_to_resubscribe_and_that_grants_again() -> None:
    contact = ContactFactory.create()
    grant(contact, purpose="newsletter")
    path = path_of(unsubscribe_url(contact_id=contact.pk, channel="email", purpose="newsletter"))
    client = Client()
    done = client.post(path, {"scope": "topic"}).content.decode()
    assert "Send me “Newsletter” emails again." in done

    response = client.post(path, {"action": "resubscribe"})

    assert "You are subscribed again" in response.content.decode()
    assert status_of(contact, purpose="newsletter") == "granted"
    assert latest(contact).source == ConsentRecord.Source.PREFERENCE_CENTER


def test_an_unsubscribe_from_a_message_records_one_unsubscribed_response() -> None:
    contact = ContactFactory.create()
    grant(contact)
    delivery = delivery_for(contact)
    page = unsubscribe_url(
        contact_id=contact.pk, channel="email", purpose="marketing", delivery_id=delivery.pk
    )
    one_click = one_click_unsubscribe_url(
        contact_id=contact.pk, channel="email", purpose="marketing", delivery_id=delivery.pk
    )

    Client().post(path_of(page), {"scope": "topic"})
    Client().post(path_of(one_click), {"List-Unsubscribe": "One-Click"})

    [response] = Response.objects.filter(kind=Response.Kind.UNSUBSCRIBED)
    assert (response.delivery, response.contact, response.campaign) == (
        delivery,
        contact,
        delivery.campaign,
    )


# --- RFC 8058 one-click --------------------------------------------------------------------


def test_one_click_post_without_cookies_or_csrf_answers_200_and_withdraws() -> None:
    contact = ContactFactory.create()
    grant(contact)
    url = one_click_unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")
    client = Client(enforce_csrf_checks=True)

    response = client.post(
        path_of(url),
        "List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )

    assert response.status_code == 200
    assert not response.cookies
    assert status_of(contact) == "withdrawn"
    assert latest(contact).source == ConsentRecord.Source.ONE_CLICK


def test_one_click_twice_is_harmless_and_writes_the_ledger_once() -> None:
    contact = ContactFactory.create()
    grant(contact)
    path = path_of(
        one_click_unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")
    )
    client = Client(enforce_csrf_checks=True)

    first = client.post(path, {"List-Unsubscribe": "One-Click"})
    second = client.post(path, {"List-Unsubscribe": "One-Click"})

    assert (first.status_code, second.status_code) == (200, 200)
    assert status_of(contact) == "withdrawn"
    assert ConsentRecord.objects.filter(contact=contact, status="withdrawn").count() == 1


def test_one_click_without_the_rfc_8058_body_changes_nothing() -> None:
    contact = ContactFactory.create()
    grant(contact)
    path = path_of(
        one_click_unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")
    )

    response = Client().post(path, {})

    assert response.status_code == 400
    assert status_of(contact) == "granted"


def test_head_on_the_one_click_url_answers_200_and_changes_nothing() -> None:
    # Mail scanners and link checkers send HEAD before (or instead of) following a link.
    contact = ContactFactory.create()
    grant(contact)
    path = path_of(
        one_click_unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")
    )

    response = Client(enforce_csrf_checks=True).head(path)

    assert response.status_code == 200
    assert response.content == b""
    assert status_of(contact) == "granted"
    assert ConsentRecord.objects.filter(contact=contact).count() == 1


def test_head_on_a_bad_one_click_token_gets_the_same_404() -> None:
    response = Client().head("/u/not-a-token/one-click/")
    assert response.status_code == 404


def test_opening_the_one_click_url_shows_the_same_page_as_the_unsubscribe_link() -> None:
    contact = ContactFactory.create(first_name="Ada")
    grant(contact)
    token_url = unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")
    token = token_url.rstrip("/").rsplit("/", 1)[1]
    client = Client()

    one_click_page = client.get(f"/u/{token}/one-click/").content.decode()
    page = client.get(f"/u/{token}/").content.decode()

    strip = re.compile(r'name="csrfmiddlewaretoken" value="[^"]+"')
    assert strip.sub("", one_click_page) == strip.sub("", page)
    assert status_of(contact) == "granted"


# --- Bad links ------------------------------------------------------------------------------


def test_tampered_truncated_expired_and_foreign_tokens_get_the_same_404() -> None:
    contact = ContactFactory.create()
    grant(contact)
    url = unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")
    token = url.rstrip("/").rsplit("/", 1)[1]
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    truncated = token[: len(token) // 2]
    foreign = signing.dumps({"c": contact.pk}, salt="campaigns.preferences", compress=True)
    with mock.patch("django.core.signing.time.time", return_value=0):
        old = signing.dumps(
            {"c": contact.pk, "ch": "email", "p": "marketing", "d": None},
            salt="campaigns.unsubscribe",
            compress=True,
        )
    client = Client()

    answers = [
        client.get(f"/u/{bad}/")
        for bad in (tampered, truncated, foreign, old, "nonsense", f"{token}x")
    ]
    answers.append(client.post(f"/u/{tampered}/one-click/", {"List-Unsubscribe": "One-Click"}))
    answers.append(client.get(f"/preferences/{token}/"))

    assert {answer.status_code for answer in answers} == {404}
    assert len({answer.content for answer in answers}) == 1
    assert status_of(contact) == "granted"


def test_a_token_for_an_erased_contact_gets_the_same_404() -> None:
    contact = ContactFactory.create()
    url = unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")
    contact.is_erased = True
    contact.save()

    erased = Client().get(path_of(url))
    nonsense = Client().get("/u/nonsense/")

    assert erased.status_code == 404
    assert erased.content == nonsense.content


def test_a_year_old_link_still_works() -> None:
    contact = ContactFactory.create()
    grant(contact)
    year_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=366)
    with mock.patch("django.core.signing.time.time", return_value=year_ago.timestamp()):
        url = unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")

    response = Client().get(path_of(url))

    assert response.status_code == 200


# --- Language and escaping --------------------------------------------------------------------


def test_a_chinese_locale_contact_sees_the_page_in_chinese() -> None:
    contact = ContactFactory.create(first_name="明", locale="zh-Hans")
    url = unsubscribe_url(contact_id=contact.pk, channel="email", purpose="newsletter")

    response = Client().get(path_of(url), HTTP_ACCEPT_LANGUAGE="en")

    body = response.content.decode()
    assert '<html lang="zh-hans">' in body
    assert "退订" in body
    assert "Stop all marketing emails." not in body


def test_a_bad_link_follows_the_browsers_language() -> None:
    response = Client().get("/u/nonsense/", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9")

    assert response.status_code == 404
    assert "链接无效" in response.content.decode()


def test_an_attacker_controlled_first_name_is_shown_escaped() -> None:
    contact = ContactFactory.create(first_name="<img src=x onerror=alert(1)>")
    url = unsubscribe_url(contact_id=contact.pk, channel="email", purpose="marketing")

    body = Client().get(path_of(url)).content.decode()

    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body
