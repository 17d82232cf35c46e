"""The ingestion services: contacts_upsert and events_ingest, with their parsers."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from crm.models import ConsentRecord, Contact, ContactAlias, ContactMerge, Event, Suppression
from crm.normalise import address_hash
from crm.selectors import consent_current
from crm.services.contact_input import ContactInput, contact_input_parse
from crm.services.contacts import contacts_upsert
from crm.services.errors import FieldError
from crm.services.event_input import EventInput, event_input_parse
from crm.services.events import events_ingest
from crm.signals import events_ingested
from tests.factories import ContactFactory, EventFactory

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


def contact(**data: Any) -> ContactInput:
    parsed, errors = contact_input_parse(data)
    assert errors == [], errors
    assert parsed is not None
    return parsed


def event(**data: Any) -> EventInput:
    data.setdefault("type", "product_viewed")
    data.setdefault("occurred_at", T0.isoformat())
    data.setdefault("contact", {"email": "ada@example.com"})
    parsed, errors = event_input_parse(data)
    assert errors == [], errors
    assert parsed is not None
    return parsed


# --- contact_input_parse ---------------------------------------------------------------------


def test_parse_normalises_email_and_phone() -> None:
    parsed = contact(email="  Ada@EXAMPLE.com ", phone="(415) 555-0123", first_name=" Ada  L ")
    assert parsed.email == "Ada@example.com"
    assert parsed.phone == "+14155550123"
    assert parsed.first_name == "Ada L"


def test_parse_errors_name_the_field_with_its_prefix_and_the_value() -> None:
    parsed, errors = contact_input_parse(
        {"email": "not-an-email", "timezone": "Mars/Base"}, prefix="contact."
    )
    assert parsed is None
    fields = {error.field: error.message for error in errors}
    assert "not-an-email" in fields["contact.email"]
    assert "Mars/Base" in fields["contact.timezone"]


def test_parse_rejects_unknown_fields_instead_of_dropping_them() -> None:
    _, errors = contact_input_parse({"email": "a@example.com", "nickname": "Ada"})
    assert [error.field for error in errors] == ["nickname"]


def test_parse_requires_an_identifier() -> None:
    _, errors = contact_input_parse({"first_name": "Ada"})
    assert errors == [
        FieldError("contact", "needs one of external_id, email or phone to identify the contact")
    ]


def test_parse_reports_bad_consent_entries_by_position() -> None:
    _, errors = contact_input_parse(
        {"email": "a@example.com", "consent": [{"channel": "email", "status": "granted"}, {}]}
    )
    assert {error.field for error in errors} == {"consent[1].channel", "consent[1].status"}


# --- contacts_upsert -------------------------------------------------------------------------


def test_upsert_creates_then_a_replay_changes_nothing() -> None:
    data = contact(email="ada@example.com", first_name="Ada", attributes={"plan": "pro"})
    [first] = contacts_upsert([data], source="api")
    updated_at = Contact.objects.get().updated_at
    [second] = contacts_upsert([data], source="api")
    assert first.created and first.changed
    assert (second.contact_id, second.created, second.changed) == (first.contact_id, False, False)
    assert Contact.objects.get().updated_at == updated_at


def test_upsert_finds_a_contact_by_email_in_any_case() -> None:
    existing = ContactFactory.create(email="Ada@example.com", first_name="Ada")
    [result] = contacts_upsert([contact(email="ADA@EXAMPLE.COM", last_name="L")], source="api")
    existing.refresh_from_db()
    assert result.contact_id == existing.pk and not result.created
    assert (existing.email, existing.last_name) == ("Ada@example.com", "L")


def test_upsert_identifies_by_external_id_before_email() -> None:
    by_id = ContactFactory.create(external_id="C-1", email="old@example.com")
    [result] = contacts_upsert([contact(external_id="C-1", email="new@example.com")], source="api")
    by_id.refresh_from_db()
    assert result.contact_id == by_id.pk
    assert by_id.email == "new@example.com"


def test_upsert_follows_aliases_of_merged_contacts() -> None:
    survivor = ContactFactory.create(email="ada@new.example")
    ContactAlias.objects.create(contact=survivor, kind="email", value="ada@old.example")
    [result] = contacts_upsert([contact(email="Ada@old.example", first_name="Ada")], source="api")
    assert result.contact_id == survivor.pk
    assert Contact.objects.count() == 1


def test_upsert_merges_two_contacts_one_input_names() -> None:
    by_id = ContactFactory.create(external_id="C-1", email=None, phone=None)
    by_phone = ContactFactory.create(email=None, phone="+14155550123")
    [result] = contacts_upsert(
        [contact(external_id="C-1", phone="+1 415 555 0123")], source="import"
    )
    assert result.contact_id == by_id.pk and result.changed
    assert list(Contact.objects.values_list("pk", "phone")) == [(by_id.pk, "+14155550123")]
    assert ContactMerge.objects.get().duplicate_uuid == by_phone.uuid


def test_upsert_puts_two_inputs_naming_one_person_on_one_contact() -> None:
    results = contacts_upsert(
        [
            contact(email="ada@example.com", first_name="Ada"),
            contact(external_id="C-9", email="ADA@example.com", phone="+14155550123"),
            contact(phone="+14155550123", last_name="Lovelace"),
        ],
        source="import",
    )
    assert len({result.contact_id for result in results}) == 1
    assert [result.created for result in results] == [True, False, False]
    stored = Contact.objects.get()
    assert (stored.external_id, stored.email, stored.first_name, stored.last_name) == (
        "C-9",
        "ada@example.com",
        "Ada",
        "Lovelace",
    )


def test_upsert_folds_a_batch_contact_into_an_existing_one_it_turns_out_to_be() -> None:
    existing = ContactFactory.create(external_id="C-1", email=None, first_name="Ada")
    results = contacts_upsert(
        [contact(email="ada@example.com"), contact(external_id="C-1", email="ada@example.com")],
        source="import",
    )
    assert [result.contact_id for result in results] == [existing.pk, existing.pk]
    assert [result.created for result in results] == [False, False]
    assert Contact.objects.get().email == "ada@example.com"


def test_upsert_merges_attributes_and_null_removes_a_key() -> None:
    existing = ContactFactory.create(attributes={"plan": "free", "points": 3})
    contacts_upsert(
        [contact(email=existing.email, attributes={"plan": "pro", "points": None, "vip": True})],
        source="api",
    )
    existing.refresh_from_db()
    assert existing.attributes == {"plan": "pro", "vip": True}


def test_upsert_empty_string_clears_and_absent_leaves_as_is() -> None:
    existing = ContactFactory.create(first_name="Ada", last_name="Lovelace", phone="+14155550123")
    contacts_upsert([contact(email=existing.email, last_name="", phone="")], source="api")
    existing.refresh_from_db()
    assert (existing.first_name, existing.last_name, existing.phone) == ("Ada", "", None)


def test_upsert_does_not_count_as_activity() -> None:
    [result] = contacts_upsert([contact(email="ada@example.com")], source="api")
    assert Contact.objects.get(pk=result.contact_id).last_activity_at is None


def test_upsert_appends_consent_only_when_the_status_changes() -> None:
    granted = {"channel": "email", "status": "granted", "text": "Offers by email"}
    data = contact(email="ada@example.com", consent=[granted])
    [result] = contacts_upsert(
        [data], source="api", ip_address="203.0.113.5", user_agent="curl/8", consent_proof={}
    )
    [replay] = contacts_upsert([data], source="api")
    withdrawn = contact(email="ada@example.com", consent=[{**granted, "status": "withdrawn"}])
    contacts_upsert([withdrawn], source="import")
    entries = list(
        ConsentRecord.objects.order_by("id").values_list("status", "source", "ip_address")
    )
    assert entries == [("granted", "api", "203.0.113.5"), ("withdrawn", "import", None)]
    assert not replay.changed
    assert consent_current([result.contact_id])[result.contact_id] == {
        ("email", "marketing"): "withdrawn"
    }


def statements(queries: list[dict[str, Any]]) -> dict[str, int]:
    """How many statements of each kind; INSERTs are split by the backend's parameter limit
    (999 on SQLite), so a test of "no query per row" counts them per kind."""
    counts: dict[str, int] = {}
    for query in queries:
        kind = query["sql"].split()[0].upper()
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def test_upsert_of_many_contacts_takes_a_fixed_number_of_queries() -> None:
    for n in range(50):
        ContactFactory.create(email=f"person{n}@example.com")
    inputs = [contact(email=f"person{n}@example.com", first_name=f"P{n}") for n in range(400)]
    with CaptureQueriesContext(connection) as context:
        results = contacts_upsert(inputs, source="import")
    counts = statements(context.captured_queries)
    assert counts.get("SELECT", 0) <= 4 and counts.get("UPDATE", 0) == 1
    assert counts["INSERT"] <= 400 * 16 // 999 + 1
    assert sum(result.created for result in results) == 350
    assert Contact.objects.count() == 400


# --- event_input_parse -----------------------------------------------------------------------


def test_event_parse_requires_a_zone_on_occurred_at() -> None:
    _, errors = event_input_parse(
        {"type": "x", "occurred_at": "2026-01-01T10:00:00", "contact": {"email": "a@example.com"}}
    )
    assert [error.field for error in errors] == ["occurred_at"]
    assert "2026-01-01T10:00:00" in errors[0].message


def test_event_parse_names_contact_fields_with_their_path() -> None:
    _, errors = event_input_parse(
        {"type": "x", "occurred_at": T0.isoformat(), "contact": {"phone": "12"}}
    )
    assert [error.field for error in errors] == ["contact.phone"]


def test_event_parse_converts_to_utc_and_value_to_decimal() -> None:
    parsed = event(occurred_at="2026-01-10T14:00:00+02:00", value="42.5", currency="eur")
    assert parsed.occurred_at == T0
    assert (parsed.value, parsed.currency) == (Decimal("42.50"), "EUR")


# --- events_ingest ---------------------------------------------------------------------------


def test_ingest_creates_the_contact_an_event_names() -> None:
    [result] = events_ingest([event(contact={"email": "new@example.com"})], source="api")
    assert result.status == "accepted"
    stored = Event.objects.get()
    assert (stored.pk, stored.contact.email) == (result.event_id, "new@example.com")


def test_ingest_reports_duplicates_of_stored_and_same_batch_events() -> None:
    [first] = events_ingest([event(id="e-1")], source="api")
    results = events_ingest([event(id="e-1"), event(id="e-2"), event(id="e-2")], source="api")
    assert [result.status for result in results] == ["duplicate", "accepted", "duplicate"]
    assert results[0].event_id == first.event_id
    assert results[2].event_id == results[1].event_id
    assert Event.objects.count() == 2


def test_ingest_same_client_id_from_another_source_is_a_different_event() -> None:
    events_ingest([event(id="e-1")], source="api")
    [result] = events_ingest([event(id="e-1")], source="shopify")
    assert result.status == "accepted"


def test_ingest_moves_activity_and_purchase_forward_only() -> None:
    events_ingest(
        [
            event(type="order_completed", occurred_at=T0.isoformat()),
            event(type="product_viewed", occurred_at=(T0 + dt.timedelta(hours=1)).isoformat()),
        ],
        source="api",
    )
    stored = Contact.objects.get()
    assert (stored.last_activity_at, stored.last_purchase_at) == (T0 + dt.timedelta(hours=1), T0)

    backfill = T0 - dt.timedelta(days=30)
    events_ingest(
        [event(type="order_completed", occurred_at=backfill.isoformat())], source="import"
    )
    stored.refresh_from_db()
    assert (stored.last_activity_at, stored.last_purchase_at) == (T0 + dt.timedelta(hours=1), T0)


def test_ingest_lands_events_by_alias_on_the_survivor() -> None:
    survivor = ContactFactory.create(email="ada@new.example")
    ContactAlias.objects.create(contact=survivor, kind="email", value="ada@old.example")
    [result] = events_ingest([event(contact={"email": "ADA@old.example"})], source="api")
    assert result.contact_id == survivor.pk
    assert Contact.objects.count() == 1


def test_ingest_sends_events_ingested_after_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    heard: list[dict[str, Any]] = []

    def receiver(**kwargs: Any) -> None:
        heard.append(kwargs)

    events_ingested.connect(receiver)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            [result] = events_ingest([event(type="order_completed")], source="api")
            assert heard == []
    finally:
        events_ingested.disconnect(receiver)
    assert heard[0]["contact_ids"] == [result.contact_id]
    assert heard[0]["event_types"] == {"order_completed"}


def test_ingest_of_a_batch_takes_a_fixed_number_of_queries() -> None:
    EventFactory.create(contact__email="person1@example.com")
    now = timezone.now()
    inputs = [
        event(
            id=f"e-{n}",
            type="order_completed" if n % 5 == 0 else "product_viewed",
            occurred_at=(now - dt.timedelta(minutes=n)).isoformat(),
            contact={"email": f"person{n % 120}@example.com"},
        )
        for n in range(500)
    ]
    with CaptureQueriesContext(connection) as context:
        results = events_ingest(inputs, source="api")
    counts = statements(context.captured_queries)
    assert counts.get("SELECT", 0) <= 6 and counts.get("UPDATE", 0) <= 2
    assert counts["INSERT"] <= (120 * 16 + 500 * 10) // 999 + 2
    assert {result.status for result in results} == {"accepted"}
    assert Contact.objects.count() == 120
    assert Event.objects.count() == 501


def test_a_failing_receiver_does_not_undo_or_hide_the_ingest(
    django_capture_on_commit_callbacks: Any, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("segment queue unavailable")

    events_ingested.connect(broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            [result] = events_ingest([event()], source="api")
    finally:
        events_ingested.disconnect(broken)
    assert result.status == "accepted"
    assert Event.objects.count() == 1
    assert "segment queue unavailable" in caplog.text


def test_a_suppressed_address_gets_no_consent_grant_through_an_upsert() -> None:
    Suppression.objects.create(
        channel="email",
        address_hash=address_hash("email", "gone@example.com"),
        reason=Suppression.Reason.ERASED,
    )
    granted = {"channel": "email", "status": "granted", "text": "Offers please"}
    [result] = contacts_upsert([contact(email="Gone@Example.com", consent=[granted])], source="api")
    assert not ConsentRecord.objects.filter(contact_id=result.contact_id).exists()


def test_a_withdrawal_for_a_suppressed_address_is_still_recorded() -> None:
    Suppression.objects.create(
        channel="email",
        address_hash=address_hash("email", "gone@example.com"),
        reason=Suppression.Reason.HARD_BOUNCE,
    )
    withdrawn = {"channel": "email", "status": "withdrawn"}
    [result] = contacts_upsert(
        [contact(email="gone@example.com", consent=[withdrawn])], source="api"
    )
    assert ConsentRecord.objects.get(contact_id=result.contact_id).status == "withdrawn"


def test_an_event_stored_by_a_concurrent_request_in_between_is_reported_as_its_duplicate() -> None:
    # Another request stores e-2 after this batch checked for duplicates, right before its
    # insert: that row wins and the batch reports e-2 as a duplicate of it.
    other = ContactFactory.create(email="grace@example.com")
    raced: list[Event] = []

    def concurrent_insert(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not raced and sql.startswith('INSERT INTO "crm_event"'):
            raced.append(Event(contact=other, occurred_at=T0, source="api", client_id="e-2"))
            raced[0].save()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(concurrent_insert):
        results = events_ingest([event(id="e-1"), event(id="e-2")], source="api")
    assert [result.status for result in results] == ["accepted", "duplicate"]
    assert (results[1].event_id, results[1].contact_id) == (raced[0].pk, other.pk)
    assert Event.objects.filter(client_id="e-2").count() == 1


def test_events_naming_one_person_two_ways_land_on_the_merge_survivor() -> None:
    ada = ContactFactory.create(email="ada@example.com", phone=None)
    twin = ContactFactory.create(email=None, phone="+14155550123")
    results = events_ingest(
        [
            event(id="e-1", contact={"email": "ada@example.com", "phone": "+14155550123"}),
            event(id="e-2", contact={"phone": "+14155550123"}),
        ],
        source="api",
    )
    assert [result.contact_id for result in results] == [ada.pk, ada.pk]
    assert not Contact.objects.filter(pk=twin.pk).exists()
    assert set(Event.objects.values_list("contact_id", flat=True)) == {ada.pk}


def test_ingest_naming_known_contacts_looks_them_up_once_and_writes_no_contact() -> None:
    known = [ContactFactory.create(email=f"person{n}@example.com") for n in range(200)]
    now = timezone.now()
    inputs = [
        event(
            id=f"e-{n}",
            occurred_at=(now - dt.timedelta(minutes=n)).isoformat(),
            contact={"email": f"Person{n % 200}@Example.com"},
        )
        for n in range(500)
    ]
    with CaptureQueriesContext(connection) as context:
        results = events_ingest(inputs, source="api")
    contact_reads = [q["sql"] for q in context.captured_queries if 'FROM "crm_contact"' in q["sql"]]
    contact_writes = [
        q["sql"]
        for q in context.captured_queries
        if q["sql"].startswith(('INSERT INTO "crm_contact"', "INSERT INTO crm_contact"))
    ]
    assert len(contact_reads) == 1 and contact_writes == []
    assert {result.contact_id for result in results} == {contact.pk for contact in known}
    assert Contact.objects.count() == 200
