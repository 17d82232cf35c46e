"""GDPR export and erasure: what a person gets back, and what is left after they are erased."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from crm.models import (
    ConsentRecord,
    Contact,
    ContactAlias,
    ContactMerge,
    DoubleOptIn,
    Event,
    MergeCandidate,
    Suppression,
)
from crm.selectors import suppressed
from crm.services.contact_input import contact_input_parse
from crm.services.contacts import contacts_upsert
from crm.services.privacy import contact_erase, contact_export
from crm.signals import contact_erased
from tests.factories import ConsentFactory, ContactFactory, EventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def person() -> Contact:
    """A contact with something in every crm table that can point at a person."""
    ada = ContactFactory.create(
        first_name="Ada",
        last_name="Lovelace",
        email="Ada.Lovelace@example.com",
        phone="+14155550123",
        external_id="CUST-10042",
        locale="en-GB",
        attributes={"plan": "pro", "nickname": "Countess"},
    )
    ContactAlias.objects.create(contact=ada, kind="email", value="ada@old-domain.example")
    ContactAlias.objects.create(contact=ada, kind="phone", value="+14155550999")
    ConsentFactory.create(
        contact=ada,
        ip_address="203.0.113.7",
        user_agent="Mozilla/5.0 Ada's laptop",
        proof={"optin_id": 1, "request_ip": "203.0.113.7", "requested_at": "2026-01-01"},
    )
    ConsentFactory.create(contact=ada, channel="sms", source=ConsentRecord.Source.IMPORT)
    EventFactory.create(contact=ada, properties={"product_name": "Blue mug", "address": "1 Lane"})
    EventFactory.create(
        contact=ada,
        type=Event.ORDER_COMPLETED,
        value=Decimal("42.50"),
        currency="EUR",
        properties={"order_id": "A-1"},
        client_id="order-A-1",
    )
    DoubleOptIn.objects.create(
        contact=ada,
        request_ip="203.0.113.7",
        request_user_agent="Mozilla/5.0",
        expires_at=timezone.now() + dt.timedelta(hours=72),
    )
    ContactMerge.objects.create(
        survivor=ada,
        duplicate_uuid="3f2b9c1e-0000-4000-8000-000000000001",
        duplicate_snapshot={"email": "ada.l@work.example", "first_name": "Ada"},
    )
    other = ContactFactory.create()
    MergeCandidate.objects.create(contact_a=other, contact_b=ada, score=91.0)
    return ada


# --- Export -----------------------------------------------------------------------------------


def test_export_contains_the_profile_and_every_related_record(person: Contact) -> None:
    data = contact_export(contact=person)

    assert data["contact_uuid"] == str(person.uuid)
    assert data["profile"]["email"] == "Ada.Lovelace@example.com"
    assert data["profile"]["attributes"] == {"plan": "pro", "nickname": "Countess"}
    # Apps above crm may add rows of their own (segment memberships); crm's are all here.
    crm_counts = {label: n for label, n in data["counts"].items() if label.startswith("crm.")}
    assert crm_counts == {
        "crm.consentrecord": 2,
        "crm.contactalias": 2,
        "crm.contactmerge": 1,
        "crm.doubleoptin": 1,
        "crm.event": 2,
        "crm.mergecandidate": 1,
    }
    aliases = {row["value"] for row in data["records"]["crm.contactalias"]}
    assert aliases == {"ada@old-domain.example", "+14155550999"}
    consent_ips = {row["ip_address"] for row in data["records"]["crm.consentrecord"]}
    assert "203.0.113.7" in consent_ips
    assert data["current_consent"] == {"email/marketing": "granted", "sms/marketing": "granted"}


def test_export_is_plain_json(person: Contact) -> None:
    data = contact_export(contact=person)

    # No datetimes, decimals or uuids left for the caller to encode.
    assert json.loads(json.dumps(data)) == data
    order = next(r for r in data["records"]["crm.event"] if r["type"] == Event.ORDER_COMPLETED)
    assert order["value"] == "42.50"


def test_export_command_writes_the_file_and_prints_its_path(
    person: Contact, tmp_path: Path
) -> None:
    target = tmp_path / "ada.json"
    out = StringIO()

    call_command("crm", "export-contact", "CUST-10042", "--output", str(target), stdout=out)

    assert out.getvalue().strip() == str(target)
    written = json.loads(target.read_text())
    assert written["contact_uuid"] == str(person.uuid)
    assert written["counts"]["crm.event"] == 2


def test_export_command_defaults_to_var_exports_by_uuid(
    person: Contact, settings: Any, tmp_path: Path
) -> None:
    settings.VAR_DIR = tmp_path
    out = StringIO()

    call_command("crm", "export-contact", str(person.uuid), stdout=out)

    path = tmp_path / "exports" / f"{person.uuid}.json"
    assert out.getvalue().strip() == str(path)
    assert json.loads(path.read_text())["profile"]["last_name"] == "Lovelace"


def test_export_command_finds_a_contact_by_an_old_email_of_a_merge(
    person: Contact, tmp_path: Path
) -> None:
    out = StringIO()
    target = tmp_path / "ada.json"
    call_command("crm", "export-contact", "ADA@old-domain.example", "-o", str(target), stdout=out)
    assert out.getvalue().strip() == str(target)
    assert json.loads(target.read_text())["profile"]["last_name"] == "Lovelace"


def test_export_command_refuses_to_replace_a_device(person: Contact) -> None:
    with pytest.raises(CommandError, match="not a regular file"):
        call_command(
            "crm", "export-contact", str(person.uuid), "-o", "/dev/null", stdout=StringIO()
        )


def test_export_command_names_an_identifier_it_cannot_find() -> None:
    with pytest.raises(CommandError, match=r"nobody@example\.com"):
        call_command("crm", "export-contact", "nobody@example.com")


# --- Erasure ----------------------------------------------------------------------------------


def test_erase_removes_names_addresses_and_attributes(person: Contact) -> None:
    contact_erase(contact=person, requested_by="dpo@example.com")

    row = Contact.objects.get(pk=person.pk)
    assert (row.first_name, row.last_name, row.locale) == ("", "", "")
    assert (row.email, row.email_key, row.phone, row.external_id) == (None, None, None, None)
    assert row.attributes == {}
    assert row.is_erased is True
    assert row.erased_at is not None
    assert str(row) == f"erased contact {person.uuid}"
    assert not ContactAlias.objects.filter(contact=person).exists()


def test_erase_anonymises_the_consent_ledger_but_keeps_its_entries(person: Contact) -> None:
    contact_erase(contact=person, requested_by="dpo@example.com")

    entries = list(ConsentRecord.objects.filter(contact=person))
    assert len(entries) == 2
    for entry in entries:
        assert entry.ip_address is None
        assert entry.user_agent == ""
        assert "request_ip" not in entry.proof
        assert entry.status == ConsentRecord.Status.GRANTED
    with_optin = next(e for e in entries if e.channel == "email")
    assert with_optin.proof == {"optin_id": 1, "requested_at": "2026-01-01", "anonymised": True}


def test_erase_clears_event_properties_and_keeps_type_time_and_value(person: Contact) -> None:
    before = list(
        Event.objects.filter(contact=person).order_by("id").values_list("type", "occurred_at")
    )

    contact_erase(contact=person, requested_by="dpo@example.com")

    events = Event.objects.filter(contact=person).order_by("id")
    assert list(events.values_list("type", "occurred_at")) == before
    assert {str(e.properties) for e in events} == {"{}"}
    order = events.get(type=Event.ORDER_COMPLETED)
    assert order.value == Decimal("42.50")
    assert order.client_id is None


def test_erase_blanks_ip_and_browser_of_opt_in_requests_and_merge_snapshots(
    person: Contact,
) -> None:
    contact_erase(contact=person, requested_by="dpo@example.com")

    optin = DoubleOptIn.objects.get(contact=person)
    assert (optin.request_ip, optin.request_user_agent) == (None, "")
    assert optin.status == DoubleOptIn.Status.EXPIRED
    assert ContactMerge.objects.get(survivor=person).duplicate_snapshot == {"erased": True}


def test_erase_suppresses_a_hash_of_every_address_the_person_had(person: Contact) -> None:
    contact_erase(contact=person, requested_by="dpo@example.com")

    for channel, address in [
        ("email", "ada.lovelace@EXAMPLE.com"),
        ("email", "ada@old-domain.example"),
        ("email", "ada.l@work.example"),
        ("sms", "+14155550123"),
        ("sms", "+14155550999"),
    ]:
        assert suppressed(channel=channel, address=address), address
    assert set(Suppression.objects.values_list("reason", flat=True)) == {"erased"}
    stored = json.dumps(list(Suppression.objects.values()), default=str)
    assert "lovelace" not in stored.lower()
    assert "4155550123" not in stored


def test_an_erased_email_imported_again_is_recognisably_suppressed(person: Contact) -> None:
    contact_erase(contact=person, requested_by="dpo@example.com")

    parsed, errors = contact_input_parse({"email": "ADA.LOVELACE@example.com"})
    assert errors == [] and parsed is not None
    [result] = contacts_upsert([parsed], source="import")

    returned = Contact.objects.get(pk=result.contact_id)
    assert returned.pk != person.pk
    assert returned.email is not None
    assert suppressed(channel="email", address=returned.email)


def test_erase_twice_changes_nothing_more(person: Contact) -> None:
    contact_erase(contact=person, requested_by="dpo@example.com")
    first = Contact.objects.get(pk=person.pk)
    suppressions = Suppression.objects.count()

    contact_erase(contact=person, requested_by="dpo@example.com")

    again = Contact.objects.get(pk=person.pk)
    assert again.erased_at == first.erased_at
    assert Suppression.objects.count() == suppressions
    assert ConsentRecord.objects.filter(contact=person).count() == 2
    assert Event.objects.filter(contact=person).count() == 2


def test_erase_tells_other_apps_after_commit(
    person: Contact, django_capture_on_commit_callbacks: Any
) -> None:
    heard: list[int] = []

    def receiver(sender: Any, contact_id: int, **kwargs: Any) -> None:
        heard.append(contact_id)

    contact_erased.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            contact_erase(contact=person, requested_by="dpo@example.com")
            assert heard == []
        for callback in callbacks:
            callback()
    finally:
        contact_erased.disconnect(receiver)
    assert heard == [person.pk]


def test_erase_dismisses_open_merge_candidates(person: Contact) -> None:
    contact_erase(contact=person, requested_by="dpo@example.com")

    assert MergeCandidate.objects.get(contact_b=person).status == MergeCandidate.Status.DISMISSED


def test_erase_command_erases_by_email_and_reports_the_uuid(person: Contact) -> None:
    out = StringIO()

    call_command("crm", "erase-contact", "ada.lovelace@example.com", stdout=out)

    assert str(person.uuid) in out.getvalue()
    assert Contact.objects.get(pk=person.pk).is_erased


def test_export_after_erasure_holds_no_personal_data(person: Contact) -> None:
    contact_erase(contact=person, requested_by="dpo@example.com")

    dumped = json.dumps(contact_export(contact=person)).lower()

    for secret in ("lovelace", "ada@", "4155550", "203.0.113.7", "mozilla", "blue mug", "cust-"):
        assert secret not in dumped, secret
