"""The Segment-compatible endpoints and who a call is about: anonymous visitors, identified
later by identify, track or an email given on a form, and alias, with every record kept."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from crm.models import Contact, ContactAlias, ContactMerge, Event
from tests.crm.test_api_segment import WHEN, contact, key, post

pytestmark = pytest.mark.django_db

__all__ = ["key"]  # the fixture, shared with the endpoint tests


def test_alias_folds_the_previous_id_into_the_user_with_its_history(key: str) -> None:
    post("track", {"userId": "old-9", "event": "Signed Up", "timestamp": WHEN}, key=key)
    post("identify", {"userId": "new-9", "traits": {"email": "lin@example.com"}}, key=key)

    answer = post("alias", {"previousId": "old-9", "userId": "new-9"}, key=key)

    assert answer.status_code == 200
    survivor = contact("new-9")
    assert answer.json()["results"][0]["contact"] == str(survivor.uuid)
    assert list(Event.objects.values_list("contact_id", "type")) == [(survivor.pk, "signed_up")]
    assert not Contact.objects.filter(external_id="old-9").exists()
    assert ContactAlias.objects.filter(value="old-9", contact=survivor).exists()
    # Later calls by the old id land on the same person.
    post("track", {"userId": "old-9", "event": "Logged In", "timestamp": WHEN}, key=key)
    assert set(Event.objects.values_list("contact_id", flat=True)) == {survivor.pk}


def test_alias_of_an_id_never_seen_makes_later_calls_by_it_land_on_the_user(key: str) -> None:
    post("alias", {"previousId": "anon-x", "userId": "u-10"}, key=key)

    post("page", {"anonymousId": "anon-x", "name": "Home", "timestamp": WHEN}, key=key)

    assert Event.objects.get().contact == contact("u-10")
    assert Contact.objects.count() == 1


def test_an_anonymous_visitor_identified_later_keeps_their_history(key: str) -> None:
    post("page", {"anonymousId": "a-40", "name": "Home", "timestamp": WHEN}, key=key)
    post("track", {"anonymousId": "a-40", "event": "Product Viewed", "timestamp": WHEN}, key=key)
    anonymous = contact("anonymous:a-40")

    answer = post(
        "identify",
        {"userId": "u-40", "anonymousId": "a-40", "traits": {"email": "kim@example.com"}},
        key=key,
    )

    kim = contact("u-40")
    assert answer.json()["results"][0]["contact"] == str(kim.uuid)
    assert kim.email == "kim@example.com"
    assert sorted(Event.objects.filter(contact=kim).values_list("type", flat=True)) == [
        "page_viewed",
        "product_viewed",
    ]
    assert not Contact.objects.filter(pk=anonymous.pk).exists()
    merge = ContactMerge.objects.get(survivor=kim)
    assert merge.duplicate_uuid == anonymous.uuid
    assert merge.duplicate_snapshot["external_id"] == "anonymous:a-40"
    # The same browser keeps sending its anonymousId alone: it lands on Kim now.
    post("page", {"anonymousId": "a-40", "name": "Cart", "timestamp": WHEN}, key=key)
    assert Event.objects.filter(contact=kim).count() == 3
    assert Contact.objects.count() == 1
    # An id found through an alias names Kim; it does not replace her own.
    assert contact("u-40").pk == kim.pk


def test_a_contact_sent_by_an_aliased_email_keeps_its_own_email(key: str) -> None:
    post("identify", {"userId": "u-44", "traits": {"email": "old@example.com"}}, key=key)
    post("identify", {"userId": "u-45", "traits": {"email": "new@example.com"}}, key=key)
    post("alias", {"previousId": "u-44", "userId": "u-45"}, key=key)

    answer = Client().post(
        "/api/v1/contacts",
        data=json.dumps({"email": "old@example.com", "first_name": "Noor"}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )

    assert answer.status_code == 200
    survivor = contact("u-45")
    assert (survivor.email, survivor.first_name) == ("new@example.com", "Noor")


def test_a_track_with_both_ids_merges_the_anonymous_visitor_into_the_user(key: str) -> None:
    post("page", {"anonymousId": "a-41", "name": "Home", "timestamp": WHEN}, key=key)
    post("identify", {"userId": "u-41", "traits": {"plan": "free"}}, key=key)

    post(
        "track",
        {"userId": "u-41", "anonymousId": "a-41", "event": "Signed Up", "timestamp": WHEN},
        key=key,
    )

    user = contact("u-41")
    assert Contact.objects.count() == 1
    assert sorted(Event.objects.filter(contact=user).values_list("type", flat=True)) == [
        "page_viewed",
        "signed_up",
    ]


def test_anonymous_then_identified_within_one_batch_ends_on_one_contact(key: str) -> None:
    post(
        "batch",
        {
            "batch": [
                {"type": "page", "anonymousId": "a-42", "name": "Home"},
                {"type": "identify", "userId": "u-42", "anonymousId": "a-42"},
                {"type": "track", "userId": "u-42", "event": "Order Completed"},
            ]
        },
        key=key,
    )

    assert Contact.objects.count() == 1
    assert Event.objects.filter(contact=contact("u-42")).count() == 2


def test_a_known_customer_giving_their_email_anonymously_keeps_their_own_id(key: str) -> None:
    post("identify", {"userId": "CUST-1", "traits": {"email": "ines@example.com"}}, key=key)
    post("page", {"anonymousId": "a-48", "name": "Home", "timestamp": WHEN}, key=key)

    answer = post(
        "identify", {"anonymousId": "a-48", "traits": {"email": "INES@example.com"}}, key=key
    )

    ines = contact("CUST-1")
    assert answer.json()["results"][0]["contact"] == str(ines.uuid)
    assert Contact.objects.count() == 1
    assert list(Event.objects.filter(contact=ines).values_list("type", flat=True)) == [
        "page_viewed"
    ]
    # Later anonymous calls from that browser are hers too.
    post("page", {"anonymousId": "a-48", "name": "Cart", "timestamp": WHEN}, key=key)
    assert Event.objects.filter(contact=ines).count() == 2


def test_a_new_visitor_giving_an_email_keeps_their_history_and_is_found_by_it(
    key: str,
) -> None:
    post("page", {"anonymousId": "a-49", "name": "Home", "timestamp": WHEN}, key=key)

    post("identify", {"anonymousId": "a-49", "traits": {"email": "omar@example.com"}}, key=key)

    [omar] = Contact.objects.all()
    assert omar.email == "omar@example.com"
    assert Event.objects.get().contact == omar
    # Signing up later as a user folds the same person into the user id.
    post("identify", {"userId": "u-49", "anonymousId": "a-49"}, key=key)
    user = contact("u-49")
    assert Contact.objects.count() == 1
    assert (user.email, Event.objects.get().contact) == ("omar@example.com", user)


def test_two_people_signing_in_on_one_browser_stay_two_contacts(key: str) -> None:
    post("page", {"anonymousId": "a-46", "name": "Home", "timestamp": WHEN}, key=key)
    post("identify", {"userId": "u-46", "anonymousId": "a-46"}, key=key)

    post(
        "track",
        {"userId": "u-47", "anonymousId": "a-46", "event": "Signed Up", "timestamp": WHEN},
        key=key,
    )

    first, second = contact("u-46"), contact("u-47")
    assert list(Event.objects.filter(contact=first).values_list("type", flat=True)) == [
        "page_viewed"
    ]
    assert list(Event.objects.filter(contact=second).values_list("type", flat=True)) == [
        "signed_up"
    ]


def test_a_user_id_may_not_pose_as_an_anonymous_contact(key: str) -> None:
    answer = post("track", {"userId": "anonymous:a-43", "event": "X"}, key=key)

    assert answer.status_code == 400
    assert answer.json()["error"] == "userId: must not start with 'anonymous:'"
