"""Hostile but valid input on the ingestion API: never a 500, each bad item rejected by the
field it is in, the good items of the same batch accepted, nothing half-written.

The requests go through Django's whole stack (middleware, URL routing, authentication, the
views, the database) in process, with the test client set to answer a crash with a 500
rather than raising it, so that a 500 is what the test sees, as a client would."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.api.auth import api_key_create
from crm.models import Contact, Event

pytestmark = pytest.mark.django_db

T0 = "2026-01-10T12:00:00Z"
DEEP = 10_000
HUGE_INTEGER = "7" * 5000


@dataclass
class Answer:
    status: int
    body: Any


Post = Callable[[str, str], Answer]


@pytest.fixture
def post() -> Post:
    """POST a raw JSON text (so that what json.dumps would never write can be sent)."""
    _, key = api_key_create(name="hostile-tests")
    client = Client(raise_request_exception=False)

    def send(path: str, text: str) -> Answer:
        response = client.post(
            f"/api/v1/{path}",
            data=text.encode("utf-8", "surrogatepass"),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {key}",
        )
        is_json = "json" in response.get("Content-Type", "")
        return Answer(response.status_code, json.loads(response.content) if is_json else None)

    return send


def event_json(**raw_fields: str) -> str:
    """One event as JSON text; `raw_fields` are JSON texts put in as they are."""
    fields = {
        "type": '"product_viewed"',
        "occurred_at": json.dumps(T0),
        "contact": '{"email": "ada@example.com"}',
        **raw_fields,
    }
    return "{" + ", ".join(f"{json.dumps(name)}: {value}" for name, value in fields.items()) + "}"


def batch(*events: str) -> str:
    return '{"events": [' + ", ".join(events) + "]}"


def assert_rejected_beside_a_good_one(answer: Answer, field: str) -> None:
    """The hostile first item is rejected naming `field`; the good second one is stored."""
    assert answer.status == 200, answer.body
    bad, good = answer.body["results"]
    assert bad["status"] == "rejected"
    path = f"events[0]{field}" if field.startswith("[") else f"events[0].{field}"
    assert bad["error"].startswith(f"{path}: "), bad["error"]
    assert good["status"] == "accepted"
    assert list(Event.objects.values_list("properties", flat=True)) == [{"good": True}]


GOOD = event_json(properties='{"good": true}')

# --- /api/v1/events --------------------------------------------------------------------------


def test_events_nested_10000_deep_is_400_and_stores_nothing(post: Post) -> None:
    deep = "[" * DEEP + "]" * DEEP
    answer = post("events", batch(event_json(properties='{"a": ' + deep + "}"), GOOD))
    assert answer.status == 400
    assert "more than 32 levels deep" in answer.body["error"]
    assert Event.objects.count() == 0


@pytest.mark.parametrize(
    ("raw_fields", "field"),
    [
        ({"value": HUGE_INTEGER}, "value"),
        ({"properties": '{"n": ' + HUGE_INTEGER + "}"}, "properties.n"),
        ({"id": HUGE_INTEGER}, "id"),
        ({"contact": '{"external_id": ' + HUGE_INTEGER + "}"}, "contact.external_id"),
    ],
    ids=["value", "property", "id", "contact.external_id"],
)
def test_events_a_5000_digit_integer_rejects_only_its_item(
    post: Post, raw_fields: dict[str, str], field: str
) -> None:
    assert_rejected_beside_a_good_one(post("events", batch(event_json(**raw_fields), GOOD)), field)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
@pytest.mark.parametrize("where", ["value", "properties"])
def test_events_nan_and_infinity_reject_only_their_item(
    post: Post, constant: str, where: str
) -> None:
    raw = {"value": constant} if where == "value" else {"properties": '{"x": ' + constant + "}"}
    field = "value" if where == "value" else "properties.x"
    assert_rejected_beside_a_good_one(post("events", batch(event_json(**raw), GOOD)), field)


@pytest.mark.parametrize("value", ['"1e999999999"', "1e999999999", '"-1e999999999"'])
def test_events_a_value_beyond_any_number_rejects_only_its_item(post: Post, value: str) -> None:
    answer = post("events", batch(event_json(value=value), GOOD))
    assert_rejected_beside_a_good_one(answer, "value")


def test_events_a_value_that_rounds_past_the_column_rejects_only_its_item(post: Post) -> None:
    answer = post("events", batch(event_json(value='"999999999999.999"'), GOOD))
    assert_rejected_beside_a_good_one(answer, "value")


@pytest.mark.parametrize(
    "occurred_at",
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "1969-12-31T23:59:59Z"],
)
def test_events_occurred_at_out_of_range_rejects_only_its_item(
    post: Post, occurred_at: str
) -> None:
    answer = post("events", batch(event_json(occurred_at=json.dumps(occurred_at)), GOOD))
    assert_rejected_beside_a_good_one(answer, "occurred_at")


def test_events_the_earliest_accepted_time_is_1970(post: Post) -> None:
    answer = post("events", batch(event_json(occurred_at='"1970-01-01T00:00:00Z"')))
    assert answer.body["results"][0]["status"] == "accepted"


# Each a JSON text with the character escaped, as a client's encoder writes it.
UNSTORABLE = {"nul": "\\u0000", "lone surrogate": "\\ud800"}
STRING_PLACES = [
    ({"type": '"view{c}"'}, "type"),
    ({"id": '"e-{c}"'}, "id"),
    ({"properties": '{{"note": "a{c}b"}}'}, "properties.note"),
    ({"properties": '{{"tags": ["ok", "{c}"]}}'}, "properties.tags[1]"),
    ({"properties": '{{"a{c}": 1}}'}, 'properties["a{c}"]'),
    ({"contact": '{{"external_id": "x{c}"}}'}, "contact.external_id"),
    ({"contact": '{{"email": "ada{c}@example.com"}}'}, "contact.email"),
    ({"currency": '"EU{c}"'}, "currency"),
    ({"occurred_at": '"2026-01-10T12:00:00{c}Z"'}, "occurred_at"),
]


@pytest.mark.parametrize("character", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
@pytest.mark.parametrize(
    ("template", "field"), STRING_PLACES, ids=[field for _, field in STRING_PLACES]
)
def test_events_an_unstorable_character_rejects_only_its_item(
    post: Post, character: str, template: dict[str, str], field: str
) -> None:
    raw = {name: text.format(c=character) for name, text in template.items()}
    answer = post("events", batch(event_json(**raw), GOOD))
    assert_rejected_beside_a_good_one(answer, field.format(c=character))


def test_events_an_unstorable_character_in_an_unknown_field_name_rejects_its_item(
    post: Post,
) -> None:
    hostile = event_json(**{"ty\x00pe": '"x"'})
    answer = post("events", batch(hostile, GOOD))
    assert_rejected_beside_a_good_one(answer, '["ty\\u0000pe"]')


def test_events_an_unstorable_source_is_400(post: Post) -> None:
    answer = post("events", '{"source": "shop\\u0000", "events": [' + GOOD + "]}")
    assert answer.status == 400
    assert answer.body["errors"][0]["field"] == "source"
    assert Event.objects.count() == 0


# --- /api/v1/contacts ------------------------------------------------------------------------


def assert_contact_refused(answer: Answer, field: str) -> None:
    assert answer.status == 400, answer.body
    assert field in [error["field"] for error in answer.body["errors"]], answer.body
    assert Contact.objects.count() == 0


def test_contacts_nested_10000_deep_is_400(post: Post) -> None:
    deep = "[" * DEEP + "]" * DEEP
    answer = post("contacts", '{"email": "ada@example.com", "attributes": {"a": ' + deep + "}}")
    assert answer.status == 400
    assert "more than 32 levels deep" in answer.body["error"]
    assert Contact.objects.count() == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"email": "ada@example.com", "attributes": {"n": ' + HUGE_INTEGER + "}}", "attributes.n"),
        ('{"external_id": ' + HUGE_INTEGER + "}", "external_id"),
    ],
    ids=["attribute", "external_id"],
)
def test_contacts_a_5000_digit_integer_is_400_naming_the_field(
    post: Post, body: str, field: str
) -> None:
    assert_contact_refused(post("contacts", body), field)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity", "1e999999999"])
def test_contacts_nan_infinity_and_overflowing_numbers_are_400_naming_the_field(
    post: Post, constant: str
) -> None:
    body = '{"email": "ada@example.com", "attributes": {"score": ' + constant + "}}"
    assert_contact_refused(post("contacts", body), "attributes.score")


def test_contacts_a_number_like_string_is_kept_as_the_text_sent(post: Post) -> None:
    body = '{"email": "ada@example.com", "attributes": {"value": "1e999999999"}}'
    assert post("contacts", body).status == 201
    assert Contact.objects.get().attributes == {"value": "1e999999999"}


CONTACT_STRING_PLACES = [
    ('{{"email": "ada@example.com", "first_name": "A{c}da"}}', "first_name"),
    ('{{"email": "ada@example.com", "last_name": "L{c}"}}', "last_name"),
    ('{{"external_id": "x{c}"}}', "external_id"),
    ('{{"email": "ada{c}@example.com"}}', "email"),
    ('{{"phone": "+14155550{c}123"}}', "phone"),
    ('{{"email": "ada@example.com", "timezone": "Europe/Paris{c}"}}', "timezone"),
    ('{{"email": "ada@example.com", "attributes": {{"note": "{c}"}}}}', "attributes.note"),
    ('{{"email": "ada@example.com", "attributes": {{"k{c}": 1}}}}', 'attributes["k{c}"]'),
    (
        '{{"email": "ada@example.com", "consent": [{{"channel": "email", "status": "granted", '
        '"text": "Yes{c}"}}]}}',
        "consent[0].text",
    ),
]


@pytest.mark.parametrize("character", list(UNSTORABLE.values()), ids=list(UNSTORABLE))
@pytest.mark.parametrize(
    ("template", "field"), CONTACT_STRING_PLACES, ids=[f for _, f in CONTACT_STRING_PLACES]
)
def test_contacts_an_unstorable_character_is_400_naming_the_field(
    post: Post, character: str, template: str, field: str
) -> None:
    answer = post("contacts", template.format(c=character))
    assert_contact_refused(answer, field.format(c=character))


@pytest.mark.parametrize("encoded", ["%00", "%ED%A0%80"], ids=["nul", "lone surrogate"])
@pytest.mark.parametrize("name", ["email", "phone", "external_id"])
def test_contacts_lookup_with_an_unstorable_character_is_400_naming_the_parameter(
    encoded: str, name: str
) -> None:
    _, key = api_key_create(name="lookup-tests")
    response = Client(raise_request_exception=False).get(
        f"/api/v1/contacts?{name}=a{encoded}b", HTTP_AUTHORIZATION=f"Bearer {key}"
    )
    # Django decodes a query's invalid UTF-8 to U+FFFD, so only NUL reaches the view intact.
    assert response.status_code in (200, 400)
    if response.status_code == 400:
        assert response.json()["errors"][0]["field"] == name
    if encoded == "%00":
        assert response.status_code == 400


# --- Fuzz ------------------------------------------------------------------------------------

HOSTILE_TEXT = st.sampled_from(
    [
        "\x00",
        "\ud800",
        "a\udfffb",
        "1e999999999",
        "-1e999999999",
        "NaN",
        "9999-12-31T23:59:59-14:00",
        "0001-01-01T00:00:00+14:00",
        "2026-01-10T12:00:00Z",
        "ada@example.com",
        "+14155550123",
        "",
        " ",
        "Europe/Paris",
        "zh-Hans",
        "FR",
        "email",
        "granted",
        "EUR",
    ]
)
ANY_TEXT = st.one_of(st.text(max_size=30), HOSTILE_TEXT)
SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=10**25, max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    ANY_TEXT,
)
JSON_VALUE = st.recursive(
    SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(ANY_TEXT, inner, max_size=3),
    ),
    max_leaves=8,
)


def _with_hostile_fields(base: Any, names: tuple[str, ...]) -> Any:
    """`base` objects with up to two of `names` (or an unknown name) set to any JSON value:
    mostly valid items, so that the hostile value is the one thing that can go wrong."""
    overrides = st.dictionaries(st.sampled_from((*names, "unknown")), JSON_VALUE, max_size=2)
    return st.builds(lambda good, bad: {**good, **bad}, base, overrides)


CONSENT = _with_hostile_fields(
    st.fixed_dictionaries(
        {"channel": st.sampled_from(["email", "sms"]), "status": st.just("granted")},
        optional={"purpose": ANY_TEXT, "text": ANY_TEXT, "text_version": ANY_TEXT},
    ),
    ("channel", "purpose", "status", "text", "text_version"),
)
CONTACT = _with_hostile_fields(
    st.fixed_dictionaries(
        {"email": st.sampled_from(["ada@example.com", "bob@example.com"])},
        optional={
            "external_id": ANY_TEXT,
            "phone": st.just("+14155550123"),
            "first_name": ANY_TEXT,
            "last_name": ANY_TEXT,
            "timezone": st.sampled_from(["Europe/Paris", "Asia/Shanghai"]),
            "locale": st.sampled_from(["en", "zh-Hans"]),
            "country": st.sampled_from(["FR", "CN"]),
            "attributes": st.dictionaries(ANY_TEXT, JSON_VALUE, max_size=3),
            "consent": st.lists(CONSENT, max_size=2),
        },
    ),
    (
        "external_id",
        "email",
        "phone",
        "first_name",
        "last_name",
        "timezone",
        "locale",
        "country",
        "attributes",
        "consent",
    ),
)
EVENT_CONTACT = _with_hostile_fields(
    st.fixed_dictionaries({"email": st.just("ada@example.com")}),
    ("external_id", "email", "phone"),
)
EVENT = _with_hostile_fields(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(["product_viewed", "order_completed"]),
            "occurred_at": st.just(T0),
            "contact": EVENT_CONTACT,
        },
        optional={
            "id": ANY_TEXT,
            "properties": st.dictionaries(ANY_TEXT, JSON_VALUE, max_size=3),
            "value": st.one_of(st.just("42.50"), st.floats(), ANY_TEXT),
            "currency": st.just("EUR"),
        },
    ),
    ("id", "type", "occurred_at", "contact", "properties", "value", "currency"),
)
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _as_json(value: Any) -> str:
    # ensure_ascii writes NUL and lone surrogates as \u escapes, as a client's encoder does;
    # NaN and Infinity come out as the bare words Python's encoder writes.
    return json.dumps(value, ensure_ascii=True)


@FUZZ
@given(items=st.lists(EVENT, min_size=1, max_size=4))
def test_events_fuzz_every_item_is_answered_and_only_accepted_ones_are_stored(
    post: Post, items: list[Any]
) -> None:
    before = Event.objects.count()
    answer = post("events", batch(*map(_as_json, items), GOOD))
    assert answer.status < 500
    stored = Event.objects.count() - before
    if answer.status != 200:
        assert stored == 0
        return
    results = answer.body["results"]
    assert [result["index"] for result in results] == list(range(len(items) + 1))
    assert {result["status"] for result in results} <= {"accepted", "duplicate", "rejected"}
    assert results[-1]["status"] in ("accepted", "duplicate")
    assert stored == sum(result["status"] == "accepted" for result in results)


@FUZZ
@given(contact=CONTACT)
def test_contacts_fuzz_is_answered_without_a_server_error_and_all_or_nothing(
    post: Post, contact: dict[str, Any]
) -> None:
    before = Contact.objects.count()
    answer = post("contacts", _as_json(contact))
    assert answer.status < 500
    if answer.status >= 400:
        assert Contact.objects.count() == before
        assert answer.body["error"]
    else:
        assert Contact.objects.filter(uuid=answer.body["id"]).exists()


def test_events_the_good_item_of_the_fuzz_test_is_accepted_alone(post: Post) -> None:
    answer = post("events", batch(GOOD))
    assert answer.body["results"][0]["status"] == "accepted"
