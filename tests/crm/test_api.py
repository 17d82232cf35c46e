"""The ingestion API over real HTTP, against a live server."""

from __future__ import annotations

import datetime as dt
import io
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone

from crm.models import ApiKey, Contact, Event
from tests.factories import ContactFactory

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 1, 10, 12, 0, tzinfo=dt.UTC)


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str]


Call = Callable[..., Answer]


def request(
    url: str,
    *,
    method: str = "GET",
    key: str | None = None,
    json_body: Any = None,
    raw: bytes | None = None,
) -> Answer:
    data = raw if raw is not None else None if json_body is None else json.dumps(json_body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", "application/json")
    req.add_header("User-Agent", "cadence-tests/1.0")
    if key is not None:
        req.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(req, timeout=30) as response:
            status, payload, headers = response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        status, payload, headers = error.code, error.read(), dict(error.headers)
    content_type = headers.get("Content-Type", "")
    body = json.loads(payload) if "json" in content_type else payload.decode()
    return Answer(status, body, headers)


@pytest.fixture
def api_key() -> str:
    """A key made the way an operator makes one: the command, last line of its output."""
    out = io.StringIO()
    call_command("crm", "create-api-key", "tests", stdout=out)
    return out.getvalue().strip().splitlines()[-1]


@pytest.fixture
def api(live_server: Any, api_key: str) -> Call:
    def call(path: str, **kwargs: Any) -> Answer:
        kwargs.setdefault("key", api_key)
        return request(f"{live_server.url}/api/v1/{path}", **kwargs)

    return call


def post_events(api: Call, events: list[dict[str, Any]], **extra: Any) -> Answer:
    return api("events", method="POST", json_body={"events": events, **extra})


def an_event(**fields: Any) -> dict[str, Any]:
    return {
        "type": "product_viewed",
        "occurred_at": T0.isoformat(),
        "contact": {"email": "ada@example.com"},
        **fields,
    }


# --- Authentication --------------------------------------------------------------------------


def test_request_without_a_key_is_401_with_a_json_error(api: Call) -> None:
    answer = api("contacts?email=a@example.com", key=None)
    assert answer.status == 401
    assert "Authorization: Bearer" in answer.body["error"]
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_request_with_a_wrong_key_is_401(api: Call) -> None:
    answer = api("contacts?email=a@example.com", key="cad_not-a-real-key")
    assert (answer.status, answer.body["error"]) == (401, "the API key is wrong or revoked")


def test_request_with_a_revoked_key_is_401(api: Call, api_key: str) -> None:
    ApiKey.objects.update(revoked_at=timezone.now())
    assert api("contacts?email=a@example.com").status == 401


def test_key_is_stored_only_as_a_hash_and_marks_its_use(api: Call, api_key: str) -> None:
    assert api_key.startswith("cad_") and len(api_key) > 40
    api("contacts?email=a@example.com")
    stored = ApiKey.objects.get()
    assert api_key not in (stored.key_hash, stored.prefix) and api_key.startswith(stored.prefix)
    assert stored.last_used_at is not None


def test_wrong_method_is_405_with_a_json_error(api: Call) -> None:
    answer = api("events")
    assert answer.status == 405
    assert answer.headers["Allow"] == "POST"
    assert "POST" in answer.body["error"]


# --- Contacts --------------------------------------------------------------------------------


def test_contact_is_created_then_found_again_by_email_in_another_case(api: Call) -> None:
    created = api(
        "contacts", method="POST", json_body={"email": "ada@example.com", "first_name": "Ada"}
    )
    again = api(
        "contacts", method="POST", json_body={"email": "ADA@Example.COM", "last_name": "Lovelace"}
    )
    assert (created.status, again.status) == (201, 200)
    assert again.body["id"] == created.body["id"]
    stored = Contact.objects.get()
    assert (str(stored.uuid), stored.first_name, stored.last_name) == (
        created.body["id"],
        "Ada",
        "Lovelace",
    )


def test_contact_validation_errors_name_each_field(api: Call) -> None:
    answer = api(
        "contacts",
        method="POST",
        json_body={"email": "ada@", "country": "France", "consent": [{"channel": "fax"}]},
    )
    assert answer.status == 400
    fields = {error["field"]: error["message"] for error in answer.body["errors"]}
    assert set(fields) == {"email", "country", "consent[0].channel", "consent[0].status"}
    assert "'France'" in fields["country"]


def test_contact_lookup_by_phone_in_any_formatting(api: Call) -> None:
    ada = ContactFactory.create(phone="+14155550123")
    answer = api("contacts?phone=(415)%20555-0123")
    assert answer.status == 200
    assert [result["id"] for result in answer.body["results"]] == [str(ada.uuid)]
    assert answer.body["results"][0]["phone"] == "+14155550123"


def test_contact_lookup_by_email_finds_nothing_for_a_stranger(api: Call) -> None:
    ContactFactory.create(email="ada@example.com")
    assert api("contacts?email=grace@example.com").body == {"results": []}


def test_replaying_a_contact_request_changes_nothing(api: Call) -> None:
    body = {"external_id": "C-1", "email": "ada@example.com", "attributes": {"plan": "pro"}}
    api("contacts", method="POST", json_body=body)
    updated_at = Contact.objects.get().updated_at
    replay = api("contacts", method="POST", json_body=body)
    assert (replay.status, replay.body["changed"]) == (200, False)
    assert Contact.objects.get().updated_at == updated_at


def test_creating_a_contact_is_not_activity(api: Call) -> None:
    answer = api("contacts", method="POST", json_body={"email": "ada@example.com"})
    detail = api(f"contacts/{answer.body['id']}")
    assert detail.body["last_activity_at"] is None


def test_consent_given_through_the_api_is_the_current_state(api: Call) -> None:
    consent = {"channel": "email", "status": "granted", "text": "Offers by email"}
    answer = api(
        "contacts", method="POST", json_body={"email": "ada@example.com", "consent": [consent]}
    )
    detail = api(f"contacts/{answer.body['id']}")
    assert [
        {key: entry[key] for key in ("channel", "purpose", "status", "source")}
        for entry in detail.body["consent"]
    ] == [{"channel": "email", "purpose": "marketing", "status": "granted", "source": "api"}]
    stored = Contact.objects.get().consents.get()
    assert (stored.ip_address, stored.user_agent) == ("127.0.0.1", "cadence-tests/1.0")


def test_contact_detail_lists_recent_events_newest_first(api: Call) -> None:
    post_events(
        api,
        [
            an_event(id="a", occurred_at=T0.isoformat()),
            an_event(id="b", type="order_completed", value=12.5, occurred_at="2026-01-11T08:00Z"),
        ],
    )
    contact = Contact.objects.get()
    detail = api(f"contacts/{contact.uuid}").body
    assert [(e["id"], e["type"], e["value"]) for e in detail["events"]] == [
        ("b", "order_completed", "12.50"),
        ("a", "product_viewed", None),
    ]


def test_erased_contact_answers_410_with_no_personal_data(api: Call) -> None:
    erased = ContactFactory.create(email=None, first_name="", is_erased=True, erased_at=T0)
    answer = api(f"contacts/{erased.uuid}")
    assert answer.status == 410
    assert answer.body == {
        "id": str(erased.uuid),
        "erased": True,
        "erased_at": "2026-01-10T12:00:00Z",
    }


def test_unknown_contact_is_404(api: Call) -> None:
    answer = api("contacts/3f2b9c1e-0000-4000-8000-000000000000")
    assert (answer.status, answer.body["error"]) == (404, "no contact has this id")


# --- Events ----------------------------------------------------------------------------------


def test_event_batch_answers_each_item_in_order(api: Call) -> None:
    answer = post_events(
        api,
        [
            an_event(id="e-1"),
            an_event(id="e-1"),
            an_event(id="e-2", occurred_at="yesterday"),
        ],
    )
    assert answer.status == 200
    results = answer.body["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "accepted"),
        (1, "duplicate"),
        (2, "rejected"),
    ]
    assert results[2]["error"].startswith("events[2].occurred_at: 'yesterday'")
    assert Event.objects.count() == 1


def test_a_bad_event_contact_is_rejected_by_its_field(api: Call) -> None:
    answer = post_events(api, [an_event(contact={"email": "nope"}), an_event()])
    results = answer.body["results"]
    assert results[0]["error"].startswith("events[0].contact.email: ")
    assert results[1]["status"] == "accepted"


def test_event_creates_the_contact_it_names(api: Call) -> None:
    answer = post_events(api, [an_event(contact={"phone": "+1 415 555 0123"})])
    contact = Contact.objects.get()
    assert contact.phone == "+14155550123"
    assert answer.body["results"][0]["contact"] == str(contact.uuid)


def test_more_than_1000_events_is_413(api: Call) -> None:
    answer = post_events(api, [an_event(id=str(n)) for n in range(1001)])
    assert answer.status == 413
    assert "1001" in answer.body["error"]
    assert Event.objects.count() == 0


def test_malformed_json_is_400(api: Call) -> None:
    answer = api("events", method="POST", raw=b'{"events": [')
    assert answer.status == 400
    assert "not valid JSON" in answer.body["error"]


def test_activity_and_purchase_follow_occurred_at_and_backfills_do_not_lower_them(
    api: Call,
) -> None:
    post_events(
        api,
        [
            an_event(type="order_completed", occurred_at="2026-01-10T12:00:00Z"),
            an_event(type="product_viewed", occurred_at="2026-01-10T13:00:00Z"),
        ],
    )
    post_events(api, [an_event(type="order_completed", occurred_at="2025-06-01T00:00:00Z")])
    detail = api(f"contacts/{Contact.objects.get().uuid}").body
    assert (detail["last_activity_at"], detail["last_purchase_at"]) == (
        "2026-01-10T13:00:00Z",
        "2026-01-10T12:00:00Z",
    )


def test_replaying_an_event_request_changes_nothing(api: Call) -> None:
    batch = [an_event(id="e-1", type="order_completed"), an_event(id="e-2")]
    post_events(api, batch)
    contact = Contact.objects.get()
    replay = post_events(api, batch)
    assert [r["status"] for r in replay.body["results"]] == ["duplicate", "duplicate"]
    assert Event.objects.count() == 2
    after = Contact.objects.get()
    assert (after.updated_at, after.last_activity_at) == (
        contact.updated_at,
        contact.last_activity_at,
    )


def test_a_batch_naming_one_person_twice_yields_one_contact(api: Call) -> None:
    post_events(
        api,
        [
            an_event(contact={"email": "ada@example.com"}),
            an_event(contact={"email": "Ada@Example.com", "phone": "+14155550123"}),
            an_event(contact={"phone": "(415) 555-0123"}),
        ],
    )
    assert Contact.objects.count() == 1
    assert Event.objects.filter(contact=Contact.objects.get()).count() == 3


def test_events_carry_their_source(api: Call) -> None:
    post_events(api, [an_event(id="o-1")], source="shopify")
    replay = post_events(api, [an_event(id="o-1")])
    assert Event.objects.get(client_id="o-1", source="shopify")
    assert replay.body["results"][0]["status"] == "accepted"


# --- Schema and docs -------------------------------------------------------------------------


def test_schema_is_openapi_json_listing_every_endpoint(api: Call) -> None:
    answer = api("openapi.json", key=None)
    assert answer.status == 200
    schema = answer.body
    assert schema["openapi"].startswith("3.1")
    assert set(schema["paths"]) == {
        "/contacts",
        "/contacts/{id}",
        "/events",
        "/track",
        "/identify",
        "/page",
        "/screen",
        "/alias",
        "/batch",
        "/openapi.json",
        "/docs",
    }
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_docs_page_lists_the_endpoints(api: Call) -> None:
    answer = api("docs", key=None)
    assert answer.status == 200
    assert "POST /events" in answer.body and "GET /contacts/{id}" in answer.body


def test_last_used_at_is_written_at_most_once_a_minute(api: Call) -> None:
    api("contacts?email=a@example.com")
    first = ApiKey.objects.get().last_used_at
    api("contacts?email=a@example.com")
    assert ApiKey.objects.get().last_used_at == first
