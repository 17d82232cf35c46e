"""The Segment-compatible endpoints through Django's whole stack: each call type, each way of
sending the key, gzip bodies and their limits, messageId deduplication, per-call errors, the
cost of a batch and the schema. Who a call is about (anonymous visitors identified later,
alias) is in test_api_segment_identity.py; Segment's own client in test_api_segment_client.py."""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from crm.api.auth import api_key_create
from crm.models import Contact, Event

pytestmark = pytest.mark.django_db

WHEN = "2026-01-10T12:00:00.000Z"


@pytest.fixture
def key() -> str:
    return api_key_create(name="segment")[1]


def post(
    path: str,
    body: Any,
    *,
    key: str | None = None,
    auth: str | None = None,
    gzipped: bool = False,
) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers: dict[str, Any] = {}
    if key is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    if auth is not None:
        headers["HTTP_AUTHORIZATION"] = auth
    if gzipped:
        raw = gzip.compress(raw)
        headers["HTTP_CONTENT_ENCODING"] = "gzip"
    return Client().post(f"/api/v1/{path}", data=raw, content_type="application/json", **headers)


def basic(username: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def contact(external_id: str) -> Contact:
    return Contact.objects.get(external_id=external_id)


# --- Each call ---------------------------------------------------------------------------------


def test_track_records_the_event_under_its_normalised_name_with_value_and_currency(
    key: str,
) -> None:
    answer = post(
        "track",
        {
            "userId": "u-1",
            "event": "Order Completed",
            "properties": {"revenue": 42.5, "currency": "eur", "order_id": "A1"},
            "timestamp": WHEN,
            "messageId": "m-1",
            "context": {"ip": "203.0.113.9"},
        },
        key=key,
    )

    assert answer.status_code == 200
    [result] = answer.json()["results"]
    assert result["status"] == "accepted"
    event = Event.objects.get()
    assert result["contact"] == str(event.contact.uuid)
    assert event.contact.external_id == "u-1"
    assert event.type == "order_completed"
    assert event.value == Decimal("42.50")
    assert event.currency == "EUR"
    assert event.properties == {"revenue": 42.5, "currency": "eur", "order_id": "A1"}
    assert event.occurred_at == dt.datetime(2026, 1, 10, 12, tzinfo=dt.UTC)
    assert event.source == "segment"
    assert event.client_id == "m-1"
    assert contact("u-1").last_purchase_at == event.occurred_at


def test_page_is_a_page_viewed_event_with_its_name_and_properties(key: str) -> None:
    answer = post(
        "page",
        {
            "anonymousId": "anon-7",
            "name": "Pricing",
            "category": "Docs",
            "properties": {"path": "/pricing", "title": "Pricing"},
            "timestamp": WHEN,
        },
        key=key,
    )

    assert answer.status_code == 200
    event = Event.objects.get()
    assert event.type == "page_viewed"
    assert event.properties == {
        "path": "/pricing",
        "title": "Pricing",
        "name": "Pricing",
        "category": "Docs",
    }
    assert event.contact.external_id == "anonymous:anon-7"


def test_screen_is_a_screen_viewed_event(key: str) -> None:
    answer = post("screen", {"userId": "u-8", "name": "Checkout", "timestamp": WHEN}, key=key)

    assert answer.status_code == 200
    event = Event.objects.get()
    assert (event.type, event.properties) == ("screen_viewed", {"name": "Checkout"})


def test_identify_upserts_the_contact_with_its_traits(key: str) -> None:
    answer = post(
        "identify",
        {
            "userId": "u-2",
            "traits": {
                "email": "Ada@Example.com",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "phone": "+44 20 7946 0958",
                "plan": "pro",
                "company": {"name": "Analytical Engines"},
            },
        },
        key=key,
    )

    assert answer.status_code == 200
    [result] = answer.json()["results"]
    assert result["status"] == "accepted" and result["changed"] is True
    ada = contact("u-2")
    assert result["contact"] == str(ada.uuid)
    assert (ada.email, ada.first_name, ada.last_name, ada.phone) == (
        "Ada@example.com",
        "Ada",
        "Lovelace",
        "+442079460958",
    )
    assert ada.attributes == {"plan": "pro", "company": {"name": "Analytical Engines"}}
    assert not Event.objects.exists()


def test_identify_splits_a_full_name_trait(key: str) -> None:
    post("identify", {"userId": "u-3", "traits": {"name": "Grace Brewster Hopper"}}, key=key)

    grace = contact("u-3")
    assert (grace.first_name, grace.last_name) == ("Grace", "Brewster Hopper")


def test_an_identify_replayed_changes_nothing(key: str) -> None:
    call = {"userId": "u-4", "traits": {"plan": "pro"}, "messageId": "m-4"}
    post("identify", call, key=key)

    answer = post("identify", call, key=key)

    assert answer.json()["results"][0]["changed"] is False
    assert Contact.objects.count() == 1


def test_batch_takes_every_kind_and_answers_each_call_by_index(key: str) -> None:
    answer = post(
        "batch",
        {
            "batch": [
                {"type": "identify", "userId": "u-11", "traits": {"email": "b@example.com"}},
                {"type": "track", "userId": "u-11", "event": "Product Viewed"},
                {"type": "page", "userId": "u-11", "name": "Cart"},
                {"type": "group", "userId": "u-11", "groupId": "g-1"},
            ],
            "sentAt": WHEN,
        },
        key=key,
    )

    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "accepted"),
        (1, "accepted"),
        (2, "accepted"),
        (3, "rejected"),
    ]
    assert results[3]["error"].startswith("batch[3].type: must be one of track, page")
    assert sorted(Event.objects.values_list("type", flat=True)) == [
        "page_viewed",
        "product_viewed",
    ]


def test_a_rudderstack_shaped_batch_with_fields_cadence_does_not_use_is_recorded(key: str) -> None:
    answer = post(
        "batch",
        {
            "batch": [
                {
                    "type": "track",
                    "event": "Product Added",
                    "userId": "u-50",
                    "anonymousId": "a-50",
                    "rudderId": "3c9a1a6e-0a5f-4d4c-9c2d-6c1c8d1f0a11",
                    "messageId": "rs-1",
                    "channel": "web",
                    "context": {"library": {"name": "RudderLabs JavaScript SDK"}},
                    "integrations": {"All": True},
                    "originalTimestamp": WHEN,
                    "sentAt": WHEN,
                    "properties": {"sku": "SKU-1"},
                }
            ],
            "sentAt": WHEN,
        },
        auth=basic(key),
    )

    assert answer.json()["results"][0]["status"] == "accepted"
    event = Event.objects.get()
    assert (event.type, event.properties, event.client_id) == (
        "product_added",
        {"sku": "SKU-1"},
        "rs-1",
    )


def test_bodies_and_calls_of_the_wrong_shape_are_named(key: str) -> None:
    assert post("batch", [1, 2], key=key).json()["errors"] == [
        {"field": "", "message": "must be an object"}
    ]
    assert post("batch", {"batch": "calls"}, key=key).json()["errors"] == [
        {"field": "batch", "message": "must be a list"}
    ]
    bad_sent_at = post("batch", {"batch": [], "sentAt": "soon"}, key=key)
    assert bad_sent_at.status_code == 400
    assert bad_sent_at.json()["errors"][0]["field"] == "sentAt"
    answer = post(
        "batch",
        {"batch": ["track", {"type": "track", "userId": "u-51", "event": "E", "context": []}]},
        key=key,
    )
    assert [r["error"] for r in answer.json()["results"]] == [
        "batch[0]: a call must be an object, got 'track'",
        "batch[1].context: must be an object, got []",
    ]


def test_a_write_key_that_is_not_a_string_is_401() -> None:
    answer = post("track", {**CALL, "writeKey": 12345})

    assert answer.status_code == 401
    assert "writeKey" in answer.json()["error"]


# --- Times -------------------------------------------------------------------------------------


def test_original_timestamp_is_corrected_for_the_device_clock_by_sent_at(key: str) -> None:
    now = timezone.now()
    # The device's clock runs an hour fast; the call was made 10 seconds before it was sent.
    original = now + dt.timedelta(hours=1) - dt.timedelta(seconds=10)
    sent = now + dt.timedelta(hours=1)
    post(
        "batch",
        {
            "batch": [
                {
                    "type": "track",
                    "userId": "u-12",
                    "event": "Clicked",
                    "originalTimestamp": original.isoformat(),
                }
            ],
            "sentAt": sent.isoformat(),
        },
        key=key,
    )

    occurred = Event.objects.get().occurred_at
    assert abs(occurred - (now - dt.timedelta(seconds=10))) < dt.timedelta(seconds=5)


def test_a_call_without_any_time_happened_when_it_was_received(key: str) -> None:
    before = timezone.now()
    post("track", {"userId": "u-13", "event": "Clicked"}, key=key)

    assert before <= Event.objects.get().occurred_at <= timezone.now()


# --- Deduplication -----------------------------------------------------------------------------


def test_a_message_id_sent_twice_is_recorded_once(key: str) -> None:
    call = {"userId": "u-14", "event": "Clicked", "messageId": "m-14", "timestamp": WHEN}
    first = post("track", call, key=key)

    again = post(
        "batch", {"batch": [{**call, "type": "track"}, {**call, "type": "track"}]}, key=key
    )

    assert first.json()["results"][0]["status"] == "accepted"
    assert [r["status"] for r in again.json()["results"]] == ["duplicate", "duplicate"]
    assert Event.objects.count() == 1


# --- Per-call errors ---------------------------------------------------------------------------


def test_each_bad_call_of_a_batch_is_named_by_index_and_field_and_the_rest_recorded(
    key: str,
) -> None:
    answer = post(
        "batch",
        {
            "batch": [
                {"type": "track", "userId": "u-15", "event": "Fine"},
                {"type": "track", "event": "Nobody"},
                {"type": "track", "userId": "u-15", "event": "Late", "timestamp": "yesterday"},
                {"type": "identify", "userId": "u-15", "traits": {"email": "not-an-email"}},
                {"type": "track", "userId": "u-15", "event": "X", "properties": {"n": "\u0000"}},
                {"type": "track", "userId": "u-15", "event": "Y", "properties": {"revenue": "?"}},
                {"type": "alias", "userId": "u-15"},
            ]
        },
        key=key,
    )

    results = answer.json()["results"]
    assert results[0]["status"] == "accepted"
    errors = {r["index"]: r["error"] for r in results if r["status"] == "rejected"}
    assert errors[1].startswith("batch[1].userId: give a userId or an anonymousId")
    assert errors[2].startswith("batch[2].timestamp: must be ISO 8601 with a zone")
    assert errors[3].startswith("batch[3].traits.email:")
    assert errors[4].startswith("batch[4].properties.n: the text contains the NUL character")
    assert errors[5].startswith("batch[5].properties.revenue: '?' is not a number")
    assert errors[6].startswith("batch[6].previousId: is required")
    assert list(Event.objects.values_list("type", flat=True)) == ["fine"]


def test_a_single_bad_call_is_a_400_naming_the_field(key: str) -> None:
    answer = post("track", {"userId": "u-16", "event": "!!!"}, key=key)

    assert answer.status_code == 400
    assert answer.json()["error"] == "event: '!!!' has no letters or digits"
    assert answer.json()["results"][0]["status"] == "rejected"


def test_the_type_of_a_call_must_match_its_endpoint(key: str) -> None:
    answer = post("page", {"type": "track", "userId": "u-17", "event": "X"}, key=key)

    assert answer.status_code == 400
    assert "type: 'track' sent to the page endpoint" in answer.json()["error"]


# --- Limits ------------------------------------------------------------------------------------


def test_a_call_over_32_kb_is_refused_whole(key: str) -> None:
    answer = post(
        "track", {"userId": "u-18", "event": "Big", "properties": {"x": "a" * 33_000}}, key=key
    )

    assert answer.status_code == 413
    assert "larger than 32768 bytes" in answer.json()["error"]


def test_a_call_over_32_kb_inside_a_batch_is_rejected_alone(key: str) -> None:
    big = {"type": "track", "userId": "u-19", "event": "Big", "properties": {"x": "a" * 33_000}}
    small = {"type": "track", "userId": "u-19", "event": "Small"}

    answer = post("batch", {"batch": [big, small]}, key=key)

    results = answer.json()["results"]
    assert results[0]["status"] == "rejected"
    assert "bytes; at most 32768" in results[0]["error"]
    assert results[1]["status"] == "accepted"


def test_a_batch_over_500_kb_is_refused(key: str) -> None:
    calls = [
        {"type": "track", "userId": "u-20", "event": "E", "properties": {"x": "a" * 30_000}}
        for _ in range(18)
    ]

    answer = post("batch", {"batch": calls}, key=key)

    assert answer.status_code == 413
    assert "larger than 512000 bytes" in answer.json()["error"]
    assert not Event.objects.exists()


# --- gzip --------------------------------------------------------------------------------------


def test_a_gzip_body_is_read(key: str) -> None:
    answer = post(
        "batch",
        {"batch": [{"type": "track", "userId": "u-21", "event": "Zipped"}]},
        key=key,
        gzipped=True,
    )

    assert answer.status_code == 200
    assert Event.objects.get().type == "zipped"


def test_a_gzip_bomb_is_refused_at_500_kb_decompressed(key: str) -> None:
    # 20 MB of spaces inside valid JSON: about 20 KB compressed.
    bomb = b'{"batch": [' + b" " * 20_000_000 + b"]}"
    assert len(gzip.compress(bomb)) < 100_000

    answer = post("batch", bomb, key=key, gzipped=True)

    assert answer.status_code == 413
    assert answer.json()["error"] == "the body is larger than 512000 bytes once decompressed"


def test_a_body_that_is_not_gzip_says_so(key: str) -> None:
    answer = Client().post(
        "/api/v1/track",
        data=b"not gzip",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_CONTENT_ENCODING="gzip",
    )

    assert answer.status_code == 400
    assert "not valid gzip" in answer.json()["error"]


def test_an_encoding_other_than_gzip_is_415(key: str) -> None:
    answer = Client().post(
        "/api/v1/batch",
        data=b"{}",
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
        HTTP_CONTENT_ENCODING="br",
    )

    assert answer.status_code == 415
    assert answer.json()["error"] == "Content-Encoding 'br' is not supported; use gzip"


# --- Authentication ----------------------------------------------------------------------------

CALL = {"userId": "u-30", "event": "Clicked"}


def test_the_key_as_basic_username_with_an_empty_password_is_accepted(key: str) -> None:
    assert post("track", CALL, auth=basic(key)).status_code == 200
    assert Event.objects.count() == 1


def test_the_key_as_write_key_in_the_body_is_accepted(key: str) -> None:
    assert post("track", {**CALL, "writeKey": key}).status_code == 200
    assert post("batch", {"batch": [{**CALL, "type": "track"}], "writeKey": key}).status_code == 200
    assert Event.objects.count() == 2


def test_the_write_key_in_a_gzip_body_is_accepted(key: str) -> None:
    assert post("track", {**CALL, "writeKey": key}, gzipped=True).status_code == 200


def test_without_a_key_the_answer_names_every_way_to_send_one() -> None:
    answer = post("track", CALL)

    assert answer.status_code == 401
    assert "Basic username" in answer.json()["error"]
    assert "writeKey" in answer.json()["error"]
    assert not Event.objects.exists()


@pytest.mark.parametrize(
    "how",
    ["bearer", "basic", "body"],
)
def test_a_wrong_key_is_401_in_every_form(key: str, how: str) -> None:
    wrong = key[:-4] + "xxxx"
    if how == "bearer":
        answer = post("track", CALL, key=wrong)
    elif how == "basic":
        answer = post("track", CALL, auth=basic(wrong))
    else:
        answer = post("track", {**CALL, "writeKey": wrong})

    assert answer.status_code == 401
    assert answer.json()["error"] == "the API key is wrong or revoked"
    assert not Event.objects.exists()


def test_basic_with_a_password_is_refused_with_the_reason(key: str) -> None:
    answer = post("track", CALL, auth=basic(key, "secret"))

    assert answer.status_code == 401
    assert "empty password" in answer.json()["error"]


def test_the_segment_endpoints_share_the_keys_rate_limit(key: str, settings: Any) -> None:
    settings.API_RATE_BURST, settings.API_RATE_SUSTAINED = "2/m", ""

    codes = [post("track", {**CALL, "writeKey": key}).status_code for _ in range(3)]

    assert codes == [200, 200, 429]


# --- Cost --------------------------------------------------------------------------------------


def test_a_batch_costs_a_few_queries_not_one_per_call(
    key: str, django_assert_max_num_queries: Any
) -> None:
    def calls(count: int, offset: int) -> list[dict[str, Any]]:
        return [
            {
                "type": "track",
                "userId": f"u-{offset + i}",
                "anonymousId": f"a-{offset + i}",
                "event": "Product Viewed",
                "messageId": f"m-{offset + i}",
            }
            for i in range(count)
        ]

    post("batch", {"batch": calls(20, 0)}, key=key)  # warm: the key, the cache table
    with django_assert_max_num_queries(60) as small:
        post("batch", {"batch": calls(20, 1000)}, key=key)
    # 400 new people, each with an anonymous id to alias: lookups go by 500 values, and
    # SQLite splits an insert by its parameter limit, so a few more queries, never 400.
    with django_assert_max_num_queries(60) as large:
        post("batch", {"batch": calls(400, 2000)}, key=key)

    assert len(large.captured_queries) - len(small.captured_queries) <= 15
    assert Event.objects.count() == 440


# --- Schema ------------------------------------------------------------------------------------


def test_the_schema_documents_each_segment_endpoint_and_every_reference_resolves() -> None:
    schema = Client().get("/api/v1/openapi.json").json()

    for path in ("/track", "/identify", "/page", "/screen", "/alias", "/batch"):
        operation = schema["paths"][path]["post"]
        assert {"bearerAuth": []} in operation["security"]
        assert operation["description"]
    assert "`writeKey`" in schema["info"]["description"]
    assert schema["components"]["securitySchemes"]["basicAuth"]["scheme"] == "basic"
    references: list[str] = []
    stack: list[Any] = [schema]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            references += [item["$ref"]] if "$ref" in item else []
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    names = {reference.rsplit("/", 1)[1] for reference in references}
    assert {"SegmentBatch", "SegmentTrack", "SegmentResults"} <= names
    assert names <= set(schema["components"]["schemas"])


def test_the_docs_page_lists_the_segment_endpoints() -> None:
    page = Client().get("/api/v1/docs").content.decode()

    assert "POST /batch" in page and "POST /identify" in page
