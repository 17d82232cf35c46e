"""contact_merge: two records of one person become one, and nothing is lost."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from crm.models import (
    ConsentRecord,
    Contact,
    ContactAlias,
    ContactMerge,
    DoubleOptIn,
    Event,
    MergeCandidate,
)
from crm.selectors_identity import contact_ids_for, contacts_by_identifiers
from crm.services.merge import ContactMergeError, contact_merge, merge_pick_survivor
from crm.signals import contact_merged, contact_merging
from tests.factories import ConsentFactory, ContactFactory, EventFactory

pytestmark = pytest.mark.django_db


def _pair() -> tuple[Contact, Contact]:
    survivor = ContactFactory.create(
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        phone="+33612345678",
        timezone="Europe/Paris",
        attributes={"plan": "pro"},
    )
    duplicate = ContactFactory.create(
        first_name="Ada",
        last_name="Lovelace",
        email="Ada.Lovelace@old.example",
        phone="+442071838750",
        external_id="CUST-42",
        timezone="Europe/London",
        attributes={"plan": "free", "loyalty_points": 120},
    )
    return survivor, duplicate


def test_merge_keeps_every_event_and_consent_entry_on_the_survivor() -> None:
    survivor, duplicate = _pair()
    events = [EventFactory.create(contact=survivor) for _ in range(2)]
    events += [EventFactory.create(contact=duplicate, type=Event.ORDER_COMPLETED) for _ in range(3)]
    consents = [ConsentFactory.create(contact=survivor)]
    consents += [
        ConsentFactory.create(contact=duplicate, channel="sms", text="Texts please"),
        ConsentFactory.create(contact=duplicate, status=ConsentRecord.Status.WITHDRAWN),
    ]

    contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")

    assert set(Event.objects.filter(contact=survivor).values_list("pk", flat=True)) == {
        e.pk for e in events
    }
    assert set(ConsentRecord.objects.filter(contact=survivor).values_list("pk", flat=True)) == {
        c.pk for c in consents
    }
    kept = ConsentRecord.objects.get(pk=consents[1].pk)
    assert (kept.channel, kept.text, kept.status) == ("sms", "Texts please", "granted")
    assert not Contact.objects.filter(pk=duplicate.pk).exists()


def test_audit_keeps_the_duplicates_full_profile_and_counts_moved() -> None:
    survivor, duplicate = _pair()
    EventFactory.create_batch(3, contact=duplicate)
    ConsentFactory.create(contact=duplicate)

    audit = contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester", score=97.5)

    audit.refresh_from_db()
    snapshot = audit.duplicate_snapshot
    assert audit.duplicate_uuid == duplicate.uuid
    assert snapshot["id"] == duplicate.pk
    assert snapshot["email"] == "Ada.Lovelace@old.example"
    assert snapshot["phone"] == "+442071838750"
    assert snapshot["external_id"] == "CUST-42"
    assert snapshot["timezone"] == "Europe/London"
    assert snapshot["attributes"] == {"plan": "free", "loyalty_points": 120}
    assert snapshot["created_at"].startswith(str(duplicate.created_at.year))
    assert audit.moved == {"crm.Event": 3, "crm.ConsentRecord": 1}
    assert (audit.survivor_id, audit.merged_by, audit.score) == (survivor.pk, "tester", 97.5)


def test_survivor_keeps_its_values_and_fills_blanks_from_the_duplicate() -> None:
    now = timezone.now()
    survivor = ContactFactory.create(
        first_name="Ada",
        last_name="",
        locale="",
        timezone="Europe/Paris",
        country="",
        attributes={"plan": "pro"},
        last_activity_at=now - dt.timedelta(days=3),
        last_purchase_at=None,
    )
    duplicate = ContactFactory.create(
        first_name="Adeline",
        last_name="Lovelace",
        locale="en-GB",
        timezone="Europe/London",
        country="GB",
        attributes={"plan": "free", "loyalty_points": 120},
        created_at=now - dt.timedelta(days=400),
        last_activity_at=now - dt.timedelta(days=1),
        last_purchase_at=now - dt.timedelta(days=10),
    )

    contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")

    survivor.refresh_from_db()
    assert (survivor.first_name, survivor.last_name) == ("Ada", "Lovelace")
    assert (survivor.locale, survivor.timezone, survivor.country) == ("en-GB", "Europe/Paris", "GB")
    assert survivor.attributes == {"plan": "pro", "loyalty_points": 120}
    assert survivor.last_activity_at == duplicate.last_activity_at
    assert survivor.last_purchase_at == duplicate.last_purchase_at
    assert survivor.created_at == duplicate.created_at


def test_duplicates_addresses_become_aliases_that_route_later_lookups() -> None:
    survivor, duplicate = _pair()

    contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")

    found = contacts_by_identifiers(
        email_keys=["ada.lovelace@old.example", "ada@example.com"],
        phones=["+442071838750"],
        external_ids=["CUST-42"],
    )
    assert found == {
        ("email", "ada.lovelace@old.example"): survivor.pk,
        ("email", "ada@example.com"): survivor.pk,
        ("phone", "+442071838750"): survivor.pk,
        ("external_id", "CUST-42"): survivor.pk,
    }


def test_survivor_without_an_email_takes_the_duplicates_and_needs_no_alias() -> None:
    survivor = ContactFactory.create(email=None, phone="+33612345678")
    duplicate = ContactFactory.create(email="ada@example.com", phone="+33699999999")

    contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")

    survivor.refresh_from_db()
    assert (survivor.email, survivor.phone) == ("ada@example.com", "+33612345678")
    assert list(ContactAlias.objects.values_list("kind", "value", "contact_id")) == [
        ("phone", "+33699999999", survivor.pk)
    ]


def test_the_duplicates_own_aliases_move_to_the_survivor() -> None:
    survivor, duplicate = _pair()
    ContactAlias.objects.create(contact=duplicate, kind="email", value="ada@older.example")

    contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")

    found = contacts_by_identifiers(email_keys=["ada@older.example"])
    assert found == {("email", "ada@older.example"): survivor.pk}


def test_an_earlier_merge_audit_of_the_duplicate_follows_it_to_the_survivor() -> None:
    survivor, duplicate = _pair()
    third = ContactFactory.create()
    first = contact_merge(survivor=duplicate, duplicate=third, merged_by="tester")

    contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")

    assert ContactMerge.objects.get(pk=first.pk).survivor_id == survivor.pk
    assert ContactMerge.objects.filter(survivor=survivor).count() == 2


def test_pending_double_opt_ins_move_to_the_survivor() -> None:
    survivor, duplicate = _pair()
    optin = DoubleOptIn.objects.create(
        contact=duplicate, expires_at=timezone.now() + dt.timedelta(days=2)
    )

    audit = contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")

    assert DoubleOptIn.objects.get(pk=optin.pk).contact_id == survivor.pk
    assert audit.moved["crm.DoubleOptIn"] == 1


def test_the_consent_ledger_still_refuses_updates_outside_a_merge() -> None:
    ConsentFactory.create()

    with pytest.raises(PermissionError):
        ConsentRecord.objects.update(status="withdrawn")


def test_merging_signal_comes_before_the_move_and_merged_after_commit(
    django_capture_on_commit_callbacks: Any,
) -> None:
    survivor, duplicate = _pair()
    EventFactory.create(contact=duplicate)
    seen: list[tuple[str, Any]] = []

    def on_merging(sender: Any, survivor_id: int, duplicate_id: int, **kwargs: Any) -> None:
        seen.append(("merging", Event.objects.filter(contact_id=duplicate_id).count()))

    def on_merged(sender: Any, survivor_id: int, duplicate_uuid: Any, **kwargs: Any) -> None:
        seen.append(("merged", duplicate_uuid))

    contact_merging.connect(on_merging)
    contact_merged.connect(on_merged)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")
            assert seen == [("merging", 1)]
    finally:
        contact_merging.disconnect(on_merging)
        contact_merged.disconnect(on_merged)
    assert seen == [("merging", 1), ("merged", duplicate.uuid)]


def test_a_failing_merging_receiver_leaves_both_contacts_untouched() -> None:
    survivor, duplicate = _pair()
    EventFactory.create(contact=duplicate)

    def refuse(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("segments could not resolve a collision")

    contact_merging.connect(refuse)
    try:
        with pytest.raises(RuntimeError):
            contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")
    finally:
        contact_merging.disconnect(refuse)
    assert Event.objects.filter(contact=duplicate).count() == 1
    assert ContactMerge.objects.count() == 0


def test_merging_an_erased_contact_is_refused_with_its_id() -> None:
    survivor, duplicate = _pair()
    Contact.objects.filter(pk=duplicate.pk).update(is_erased=True)

    with pytest.raises(ContactMergeError, match=f"#{duplicate.pk} is erased"):
        contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")


def test_merging_a_contact_into_itself_is_refused() -> None:
    survivor, _ = _pair()

    with pytest.raises(ContactMergeError, match="into itself"):
        contact_merge(survivor=survivor, duplicate=survivor, merged_by="tester")


def test_merging_a_contact_already_merged_away_is_refused() -> None:
    survivor, duplicate = _pair()
    contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")

    with pytest.raises(ContactMergeError, match="no longer exists"):
        contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")


def test_a_dismissed_pair_of_the_duplicate_stays_dismissed_for_the_survivor() -> None:
    survivor, duplicate = _pair()
    other = ContactFactory.create()
    low, high = sorted((duplicate.pk, other.pk))
    MergeCandidate.objects.create(
        contact_a_id=low, contact_b_id=high, score=60, status=MergeCandidate.Status.DISMISSED
    )
    MergeCandidate.objects.create(
        contact_a_id=min(survivor.pk, duplicate.pk),
        contact_b_id=max(survivor.pk, duplicate.pk),
        score=95,
    )

    contact_merge(survivor=survivor, duplicate=duplicate, merged_by="tester")

    rows = list(MergeCandidate.objects.values_list("contact_a_id", "contact_b_id", "status"))
    assert rows == [(*sorted((survivor.pk, other.pk)), "dismissed")]


def test_the_more_complete_contact_is_picked_as_survivor_then_the_older() -> None:
    sparse = ContactFactory.create(email="a@example.com", timezone="", country="", last_name="")
    full = ContactFactory.create(email="b@example.com")
    older = ContactFactory.create(
        email="c@example.com", created_at=timezone.now() - dt.timedelta(days=9)
    )

    assert merge_pick_survivor(a=sparse, b=full) == (full, sparse)
    assert merge_pick_survivor(a=full, b=older) == (older, full)


def test_identifier_lookup_resolves_a_batch_in_a_few_queries(
    django_assert_max_num_queries: Any,
) -> None:
    contacts = [
        ContactFactory.create(email=f"p{i}@example.com", phone=f"+3361234{i:04d}")
        for i in range(300)
    ]
    ContactAlias.objects.create(contact=contacts[0], kind="email", value="old@example.com")
    emails = [f"p{i}@example.com" for i in range(300)] + ["old@example.com", "nobody@example.com"]

    with django_assert_max_num_queries(4):
        found = contacts_by_identifiers(
            email_keys=emails, phones=[c.phone for c in contacts], external_ids=[None, ""]
        )

    assert len(found) == 601
    assert found[("email", "old@example.com")] == contacts[0].pk
    assert ("email", "nobody@example.com") not in found


def test_a_record_naming_two_contacts_resolves_to_both() -> None:
    survivor, duplicate = _pair()
    found = contacts_by_identifiers(email_keys=["ada@example.com"], phones=["+442071838750"])

    ids = contact_ids_for(found, email_key="ada@example.com", phone="+442071838750")

    assert ids == [survivor.pk, duplicate.pk]
