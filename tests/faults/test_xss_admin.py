"""XSS payloads in contact names, webhook fields and tracked URLs are shown escaped in admin,
in a real browser: no script runs, the payload is visible as text."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from campaigns.models import Response
from tests.campaigns.consent_helpers import delivery_for
from tests.factories import ContactFactory

PAYLOAD = '<img src=x onerror="window.__xss=1"><script>window.__xss=1</script>'


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_xss_in_names_webhook_fields_and_urls_is_shown_escaped_in_admin(
    live_server: Any, page: Any
) -> None:
    contact = ContactFactory.create(first_name=PAYLOAD, last_name="<b>bold</b>")
    delivery = delivery_for(contact, provider_message_id="pm-x")
    response = Response.objects.create(
        delivery=delivery,
        contact=contact,
        campaign=delivery.campaign,
        kind="clicked",
        url="javascript:window.__xss=1//" + PAYLOAD,
        provider="postmark",
        provider_event_id="ev-1",
        payload={"Description": PAYLOAD, "Tag": PAYLOAD},
    )
    get_user_model().objects.create_superuser("ada", "ada@example.com", "correct-horse-42")
    dialogs: list[str] = []

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.goto(f"{live_server.url}/admin/login/")
    page.fill("#id_username", "ada")
    page.fill("#id_password", "correct-horse-42")
    page.click("input[type=submit]")
    page.wait_for_selector("#site-name")
    pages = [
        "/admin/crm/contact/",
        f"/admin/crm/contact/{contact.pk}/change/",
        "/admin/campaigns/response/",
        f"/admin/campaigns/response/{response.pk}/change/",
        "/admin/campaigns/delivery/",
    ]
    for path in pages:
        page.goto(f"{live_server.url}{path}")
        assert page.evaluate("window.__xss") is None, path
        assert page.locator("script:text('window.__xss')").count() == 0, path
        assert page.locator("img[onerror]").count() == 0, path
        assert page.locator("a[href^='javascript:']").count() == 0, path
    page.goto(f"{live_server.url}/admin/crm/contact/{contact.pk}/change/")
    assert page.input_value("#id_first_name") == PAYLOAD  # shown as text, intact
    print(f"XSS payload on {len(pages)} admin pages: 0 scripts ran, 0 dialogs")
    assert dialogs == []
