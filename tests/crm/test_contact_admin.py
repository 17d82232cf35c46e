"""The contacts admin as marketers and staff use it: lists, filters, inlines, actions, and
what the Marketers group may and may not do."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from crm.models import ConsentRecord, Contact, Suppression
from crm.normalise import address_hash
from tests.factories import ConsentFactory, ContactFactory, EventFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/crm/contact/"


@pytest.fixture
def staff_client() -> Client:
    user = User.objects.create_superuser("sam", "sam@example.com", "x")
    client = Client()
    client.force_login(user)
    return client


def action(client: Client, name: str, contacts: list[Contact], **extra: str) -> Any:
    data: dict[str, Any] = {"action": name, "_selected_action": [c.pk for c in contacts]}
    data.update(extra)
    return client.post(CHANGELIST, data)


# --- The Marketers group ----------------------------------------------------------------------


def test_a_marketer_can_open_the_contact_changelist(marketer_client: Client) -> None:
    ContactFactory.create(first_name="Ada")

    response = marketer_client.get(CHANGELIST)

    assert response.status_code == 200
    assert "Ada" in response.content.decode()


def test_a_marketer_cannot_delete_a_contact(marketer_client: Client) -> None:
    contact = ContactFactory.create()

    assert marketer_client.get(f"{CHANGELIST}{contact.pk}/delete/").status_code == 403
    assert (
        marketer_client.post(f"{CHANGELIST}{contact.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert Contact.objects.filter(pk=contact.pk).exists()


def test_a_marketer_cannot_edit_or_add_a_consent_record(marketer_client: Client) -> None:
    record = ConsentFactory.create(status=ConsentRecord.Status.WITHDRAWN)
    url = f"/admin/crm/consentrecord/{record.pk}/change/"

    view = marketer_client.get(url)
    edit = marketer_client.post(url, {"status": "granted", "channel": "email"})

    assert view.status_code == 200
    assert 'name="_save"' not in view.content.decode()
    assert edit.status_code == 403
    assert marketer_client.get("/admin/crm/consentrecord/add/").status_code == 403
    assert ConsentRecord.objects.get().status == ConsentRecord.Status.WITHDRAWN


def test_a_marketer_has_no_access_to_api_keys(marketer_client: Client) -> None:
    assert marketer_client.get("/admin/crm/apikey/").status_code == 403


def test_a_marketer_is_not_offered_erasure(marketer_client: Client) -> None:
    contact = ContactFactory.create()

    page = marketer_client.get(CHANGELIST).content.decode()
    action(marketer_client, "erase_selected", [contact], index="0", post="yes")

    assert "erase_selected" not in page
    assert not Contact.objects.get(pk=contact.pk).is_erased


def test_nobody_can_edit_consent_in_admin_not_even_a_superuser(staff_client: Client) -> None:
    record = ConsentFactory.create()

    response = staff_client.post(f"/admin/crm/consentrecord/{record.pk}/change/", {})

    assert response.status_code == 403
    assert staff_client.get(f"/admin/crm/consentrecord/{record.pk}/delete/").status_code == 403


# --- Lists, filters, inlines ------------------------------------------------------------------


def test_the_email_consent_filter_uses_the_latest_ledger_entry(staff_client: Client) -> None:
    changed_mind = ContactFactory.create(first_name="Withdrew")
    ConsentFactory.create(contact=changed_mind, status="granted")
    ConsentFactory.create(contact=changed_mind, status="withdrawn")
    ConsentFactory.create(contact=ContactFactory.create(first_name="Subscribed"), status="granted")
    ContactFactory.create(first_name="Unasked")

    granted = staff_client.get(CHANGELIST, {"email_consent": "granted"}).content.decode()
    never = staff_client.get(CHANGELIST, {"email_consent": "none"}).content.decode()

    assert "Subscribed" in granted
    assert "Withdrew" not in granted and "Unasked" not in granted
    assert "Unasked" in never and "Subscribed" not in never


def test_the_consent_filter_costs_the_same_queries_for_more_contacts(
    staff_client: Client,
) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert staff_client.get(CHANGELIST, {"sms_consent": "granted"}).status_code == 200
        return len(captured)

    ConsentFactory.create(channel="sms")
    few = queries()
    for _ in range(15):
        ConsentFactory.create(channel="sms")

    assert queries() == few


def test_search_finds_a_contact_by_email_in_any_case(staff_client: Client) -> None:
    ContactFactory.create(first_name="Ada", email="Ada@example.com")
    ContactFactory.create(first_name="Bob")

    body = staff_client.get(CHANGELIST, {"q": "ADA@EXAMPLE"}).content.decode()

    assert "Ada" in body and "Bob" not in body


def test_the_contact_page_shows_the_latest_20_events_and_links_to_all(
    staff_client: Client,
) -> None:
    contact = ContactFactory.create()
    for _ in range(25):
        EventFactory.create(contact=contact)

    body = staff_client.get(f"{CHANGELIST}{contact.pk}/change/").content.decode()

    assert "25 events" in body
    assert f"/admin/crm/event/?contact__id__exact={contact.pk}" in body
    assert 'id="events-20"' not in body and 'id="events-19"' in body


def test_the_event_changelist_filters_by_the_linked_contact(staff_client: Client) -> None:
    contact = ContactFactory.create()
    EventFactory.create(contact=contact, type="wishlist_added")
    EventFactory.create(type="page_viewed")

    body = staff_client.get(f"/admin/crm/event/?contact__id__exact={contact.pk}").content.decode()

    assert "wishlist_added" in body and "page_viewed</td>" not in body


def test_contact_names_are_escaped_everywhere(staff_client: Client) -> None:
    contact = ContactFactory.create(first_name="<script>alert(1)</script>")
    EventFactory.create(contact=contact, properties={"note": "<img src=x onerror=alert(2)>"})

    pages = [
        staff_client.get(CHANGELIST).content.decode(),
        staff_client.get(f"{CHANGELIST}{contact.pk}/change/").content.decode(),
        action(staff_client, "erase_selected", [contact], index="0").content.decode(),
    ]

    for body in pages:
        assert "<script>alert(1)" not in body
        assert "<img src=x" not in body
        assert "&lt;script&gt;alert(1)" in body


# --- Actions ----------------------------------------------------------------------------------


def test_the_export_action_downloads_the_contacts_json(staff_client: Client) -> None:
    contact = ContactFactory.create(email="ada@example.com")
    EventFactory.create(contact=contact)

    response = action(staff_client, "export_data", [contact], index="0")

    assert response.status_code == 200
    assert response["Content-Disposition"] == f'attachment; filename="{contact.uuid}.json"'
    data = json.loads(response.content)
    assert data["profile"]["email"] == "ada@example.com"
    assert data["counts"]["crm.event"] == 1


def test_the_erase_action_asks_first_then_erases(staff_client: Client) -> None:
    contact = ContactFactory.create(first_name="Ada", email="ada@example.com")

    asked = action(staff_client, "erase_selected", [contact], index="0")
    assert asked.status_code == 200
    assert "Yes, erase their personal data" in asked.content.decode()
    assert not Contact.objects.get(pk=contact.pk).is_erased

    done = action(staff_client, "erase_selected", [contact], post="yes")

    assert done.status_code == 302
    erased = Contact.objects.get(pk=contact.pk)
    assert erased.is_erased and erased.email is None
    assert Suppression.objects.filter(address_hash=address_hash("email", "ada@example.com"))


def test_an_erased_contact_cannot_be_edited_back(staff_client: Client) -> None:
    contact = ContactFactory.create()
    action(staff_client, "erase_selected", [contact], post="yes")

    response = staff_client.post(f"{CHANGELIST}{contact.pk}/change/", {"first_name": "Back"})

    assert response.status_code == 403
    assert Contact.objects.get(pk=contact.pk).first_name == ""


# --- Suppression ------------------------------------------------------------------------------


def test_staff_add_a_suppression_by_address_and_only_its_hash_is_kept(
    marketer_client: Client,
) -> None:
    response = marketer_client.post(
        "/admin/crm/suppression/add/",
        {"channel": "email", "address": " Eve@Example.com ", "note": "asked by phone"},
    )

    assert response.status_code == 302
    entry = Suppression.objects.get()
    assert entry.address_hash == address_hash("email", "eve@example.com")
    assert entry.reason == Suppression.Reason.MANUAL
    listed = marketer_client.get("/admin/crm/suppression/").content.decode()
    detail = marketer_client.get(f"/admin/crm/suppression/{entry.pk}/change/").content.decode()
    assert "eve@" not in listed.lower() and "eve@" not in detail.lower()


def test_a_bad_address_for_suppression_is_refused_with_the_reason(staff_client: Client) -> None:
    response = staff_client.post(
        "/admin/crm/suppression/add/", {"channel": "sms", "address": "call me"}
    )

    assert response.status_code == 200
    assert "is not a phone number" in response.content.decode()
    assert not Suppression.objects.exists()


def test_searching_suppression_by_full_address_finds_its_entry(staff_client: Client) -> None:
    Suppression.objects.create(
        channel="email", address_hash=address_hash("email", "eve@example.com"), reason="manual"
    )
    Suppression.objects.create(
        channel="email", address_hash=address_hash("email", "adam@example.com"), reason="manual"
    )

    body = staff_client.get("/admin/crm/suppression/", {"q": "EVE@example.com"}).content.decode()

    assert address_hash("email", "eve@example.com")[:12] in body
    assert address_hash("email", "adam@example.com")[:12] not in body
