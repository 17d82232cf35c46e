"""Likely duplicates: found by blocking and scoring, reviewed, merged by command."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from crm.models import Contact, ContactAlias, ContactMerge, Event, MergeCandidate
from crm.services.duplicates.candidates import candidate_dismiss
from crm.services.duplicates.detection import duplicates_find
from crm.services.duplicates.keys import external_id_key, mailbox_key
from crm.services.duplicates.scoring import ContactFacts, pair_score
from tests.factories import ContactFactory, EventFactory

pytestmark = pytest.mark.django_db


def _candidates() -> list[tuple[int, int]]:
    return list(MergeCandidate.objects.order_by("pk").values_list("contact_a_id", "contact_b_id"))


def _facts(**values: Any) -> ContactFacts:
    base: dict[str, Any] = {
        "id": 1,
        "first_name": "",
        "last_name": "",
        "email_key": None,
        "phone": None,
        "external_id": None,
    }
    return ContactFacts(**{**base, **values})


def test_a_typoed_name_with_the_same_number_under_another_country_code_is_proposed() -> None:
    a = ContactFactory.create(first_name="Katherine", last_name="Johnson", phone="+33612345678")
    b = ContactFactory.create(first_name="Katharine", last_name="Jonson", phone="+41612345678")

    duplicates_find()

    candidate = MergeCandidate.objects.get()
    assert (candidate.contact_a_id, candidate.contact_b_id) == (a.pk, b.pk)
    assert candidate.score >= 80
    assert "same phone number, written differently or under another country code" in (
        candidate.reasons
    )
    assert any(reason.startswith("name similarity") for reason in candidate.reasons)


def test_a_typoed_name_holding_anothers_former_phone_is_proposed() -> None:
    a = ContactFactory.create(first_name="Jonathan", last_name="Smith", phone="+33699999999")
    ContactAlias.objects.create(contact=a, kind="phone", value="+442071838750")
    b = ContactFactory.create(first_name="Jonathon", last_name="Smyth", phone="+442071838750")

    duplicates_find()

    candidate = MergeCandidate.objects.get()
    assert (candidate.contact_a_id, candidate.contact_b_id) == (a.pk, b.pk)
    assert "same phone (one holds it as a former number)" in candidate.reasons
    assert candidate.score >= 85


def test_different_people_are_not_proposed() -> None:
    ContactFactory.create(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    ContactFactory.create(first_name="Grace", last_name="Hopper", email="grace@example.org")
    ContactFactory.create(first_name="Alan", last_name="Turing", phone="+442071838750")
    ContactFactory.create(first_name="Edsger", last_name="Dijkstra", phone="+31201234567")

    stats = duplicates_find()

    assert _candidates() == []
    assert stats.created == 0


def test_the_same_name_alone_is_not_enough() -> None:
    ContactFactory.create(first_name="John", last_name="Smith", email="john@example.com")
    ContactFactory.create(first_name="John", last_name="Smith", email="jsmith@other.example")

    duplicates_find()

    assert _candidates() == []


def test_family_members_sharing_a_number_score_below_the_threshold() -> None:
    ContactFactory.create(first_name="Maria", last_name="Garcia", phone="+34612345678", email=None)
    ContactFactory.create(first_name="Pedro", last_name="Garcia", phone="+52612345678")

    duplicates_find()

    assert _candidates() == []


def test_gmail_dots_and_tags_point_to_the_same_mailbox() -> None:
    a = ContactFactory.create(
        first_name="Ada", last_name="Lovelace", email="ada.lovelace@gmail.com"
    )
    b = ContactFactory.create(
        first_name="Ada", last_name="", email="adalovelace+shop@googlemail.com"
    )

    duplicates_find()

    candidate = MergeCandidate.objects.get()
    assert (candidate.contact_a_id, candidate.contact_b_id) == (a.pk, b.pk)
    assert "same mailbox (dots or +tag differ)" in candidate.reasons


def test_an_external_id_written_another_way_is_proposed() -> None:
    a = ContactFactory.create(
        first_name="Li", last_name="Wei", external_id="CUST-00042", email=None
    )
    b = ContactFactory.create(
        first_name="Li", last_name="Wei", external_id="cust_00042", email=None
    )

    duplicates_find()

    assert _candidates() == [(a.pk, b.pk)]
    assert "same external id, written differently" in MergeCandidate.objects.get().reasons


def test_the_same_local_part_at_another_domain_is_proposed() -> None:
    a = ContactFactory.create(
        first_name="Grace", last_name="Hopper", email="grace.hopper@navy.example"
    )
    b = ContactFactory.create(
        first_name="Grace", last_name="Hoper", email="grace.hopper@yale.example"
    )

    duplicates_find()

    assert _candidates() == [(a.pk, b.pk)]


def test_running_detection_again_does_not_duplicate_candidates() -> None:
    ContactFactory.create(first_name="Katherine", last_name="Johnson", phone="+33612345678")
    ContactFactory.create(first_name="Katharine", last_name="Johnson", phone="+41612345678")
    duplicates_find()

    stats = duplicates_find()

    assert MergeCandidate.objects.count() == 1
    assert (stats.created, stats.unchanged) == (0, 1)


def test_a_dismissed_pair_is_not_proposed_again() -> None:
    ContactFactory.create(first_name="Katherine", last_name="Johnson", phone="+33612345678")
    ContactFactory.create(first_name="Katharine", last_name="Johnson", phone="+41612345678")
    duplicates_find()
    candidate_dismiss(candidates=MergeCandidate.objects.all(), reviewed_by_id=None)

    stats = duplicates_find()

    assert list(MergeCandidate.objects.values_list("status", flat=True)) == ["dismissed"]
    assert stats.already_reviewed == 1


def test_a_block_larger_than_max_block_is_skipped_and_counted() -> None:
    for country_code in ("+33", "+41", "+32"):
        ContactFactory.create(first_name="Kim", last_name="Lee", phone=f"{country_code}612345678")

    stats = duplicates_find(max_block=2)

    assert _candidates() == []
    assert stats.oversized_blocks["phone number"] == 1


def test_erased_contacts_are_never_proposed() -> None:
    ContactFactory.create(first_name="Katherine", last_name="Johnson", phone="+33612345678")
    erased = ContactFactory.create(
        first_name="Katharine", last_name="Johnson", phone="+41612345678"
    )
    Contact.objects.filter(pk=erased.pk).update(is_erased=True)

    duplicates_find()

    assert _candidates() == []


def test_detection_reports_progress_through_the_callback() -> None:
    ContactFactory.create(first_name="Katherine", last_name="Johnson", phone="+33612345678")
    ContactFactory.create(first_name="Katharine", last_name="Johnson", phone="+41612345678")
    lines: list[str] = []

    duplicates_find(progress=lines.append)

    assert "Blocking by phone number..." in lines
    assert lines[-1].startswith("1 pairs scored: 1 new candidates")


def test_keys_normalise_mailboxes_and_external_ids() -> None:
    assert mailbox_key("a.b+news@googlemail.com") == "ab@gmail.com"
    assert mailbox_key("a.b+news@example.com") == "a.b@example.com"
    assert external_id_key("CUST-00042") == external_id_key("cust42") == "cust42"


def test_reasons_never_quote_names_or_addresses() -> None:
    a = _facts(id=1, first_name="Zoë", last_name="Ångström", phone="+33612345678")
    b = _facts(id=2, first_name="Zoe", last_name="Angstrom", phone="+41612345678")

    result = pair_score(a, b)

    text = " ".join(result.reasons)
    assert result.has_evidence
    assert "Zo" not in text and "612345678" not in text


# --- Commands -----------------------------------------------------------------------------


def _scored_pairs() -> tuple[MergeCandidate, MergeCandidate]:
    high_a = ContactFactory.create(
        first_name="Katherine", last_name="Johnson", phone="+33612345678"
    )
    high_b = ContactFactory.create(
        first_name="Katharine", last_name="Johnson", phone="+41612345678"
    )
    low_a = ContactFactory.create(
        first_name="Grace", last_name="Hopper", email="g.hopper@navy.example"
    )
    low_b = ContactFactory.create(
        first_name="Grace", last_name="Hopper", email="ghopper@yale.example"
    )
    high = MergeCandidate.objects.create(
        contact_a=high_a, contact_b=high_b, score=96, reasons=["same phone"]
    )
    low = MergeCandidate.objects.create(
        contact_a=low_a, contact_b=low_b, score=70, reasons=["same email local part"]
    )
    return high, low


def test_find_duplicates_command_prints_progress_and_records_candidates() -> None:
    ContactFactory.create(first_name="Katherine", last_name="Johnson", phone="+33612345678")
    ContactFactory.create(first_name="Katharine", last_name="Johnson", phone="+41612345678")
    out = StringIO()

    call_command("crm", "find-duplicates", stdout=out)

    text = out.getvalue()
    assert "Blocking by phone number..." in text
    assert "1 pairs scored, 1 new candidates so far" in text
    assert "Done: 1 new merge candidates." in text
    assert MergeCandidate.objects.count() == 1


def test_merge_duplicates_merges_only_candidates_at_or_above_min_score() -> None:
    high, low = _scored_pairs()
    EventFactory.create(contact=high.contact_b)
    EventFactory.create(contact=high.contact_a)
    out = StringIO()

    call_command("crm", "merge-duplicates", "--min-score", "90", stdout=out)

    assert ContactMerge.objects.count() == 1
    survivor = ContactMerge.objects.get().survivor
    assert Event.objects.filter(contact=survivor).count() == 2
    assert list(MergeCandidate.objects.values_list("pk", flat=True)) == [low.pk]
    assert Contact.objects.filter(pk__in=[low.contact_a_id, low.contact_b_id]).count() == 2
    text = out.getvalue()
    assert "1 open candidates score 90 or more." in text
    assert "[1/1] merged contact #" in text and "(score 96)" in text
    assert "Done: 1 merged, 0 failed." in text


def test_merge_duplicates_dry_run_changes_nothing() -> None:
    high, _ = _scored_pairs()
    out = StringIO()

    call_command("crm", "merge-duplicates", "--min-score", "50", "--dry-run", stdout=out)

    assert MergeCandidate.objects.count() == 2
    assert ContactMerge.objects.count() == 0
    assert f"would merge #{high.contact_a_id} and #{high.contact_b_id} (score 96)" in out.getvalue()


def test_merge_duplicates_with_find_detects_then_merges() -> None:
    ContactFactory.create(first_name="Katherine", last_name="Johnson", phone="+33612345678")
    ContactFactory.create(first_name="Katharine", last_name="Johnson", phone="+41612345678")
    out = StringIO()

    call_command("crm", "merge-duplicates", "--find", "--min-score", "80", stdout=out)

    assert Contact.objects.count() == 1
    assert "Blocking by phone number..." in out.getvalue()
    assert ContactAlias.objects.filter(kind="phone").count() == 1


def test_merge_duplicates_rejects_a_score_outside_0_to_100() -> None:
    with pytest.raises(CommandError, match="--min-score 150 is not between 0 and 100"):
        call_command("crm", "merge-duplicates", "--min-score", "150")


def test_merge_duplicates_merges_a_chain_into_one_contact() -> None:
    a = ContactFactory.create(first_name="Katherine", last_name="Johnson", phone="+33612345678")
    b = ContactFactory.create(first_name="Katharine", last_name="Johnson", phone="+41612345678")
    c = ContactFactory.create(first_name="Katherine", last_name="Jonson", phone="+32612345678")
    for x, y in ((a, b), (b, c), (a, c)):
        MergeCandidate.objects.create(contact_a=x, contact_b=y, score=95)

    # After the first merge the remaining pairs are re-scored from the merged contact.
    call_command("crm", "merge-duplicates", "--min-score", "80", stdout=StringIO())

    assert Contact.objects.count() == 1
    assert ContactMerge.objects.count() == 2
    assert MergeCandidate.objects.count() == 0


def test_numbered_addresses_of_different_people_are_not_similar_evidence() -> None:
    a = _facts(id=1, first_name="Sam", last_name="Lee", email_key="person1@example.com")
    b = _facts(id=2, first_name="Sam", last_name="Lee", email_key="person2@example.com")

    assert not pair_score(a, b).has_evidence
