"""Scoring a pair: what is known about each contact, and how alike the two look."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from crm.models import Contact, ContactAlias
from crm.services.duplicates.keys import (
    GENERIC_LOCAL_PARTS,
    external_id_key,
    local_part,
    mailbox_key,
    phone_tail,
)


@dataclass(frozen=True)
class ContactFacts:
    id: int
    first_name: str
    last_name: str
    email_key: str | None
    phone: str | None
    external_id: str | None
    alias_emails: frozenset[str] = frozenset()
    alias_phones: frozenset[str] = frozenset()
    alias_external_ids: frozenset[str] = frozenset()

    @property
    def emails(self) -> frozenset[str]:
        return self.alias_emails | ({self.email_key} if self.email_key else set())

    @property
    def phones(self) -> frozenset[str]:
        return self.alias_phones | ({self.phone} if self.phone else set())

    @property
    def external_ids(self) -> frozenset[str]:
        return self.alias_external_ids | ({self.external_id} if self.external_id else set())


def contact_facts(contact_ids: Iterable[int]) -> dict[int, ContactFacts]:
    """Facts for many contacts in two queries (contacts, then their aliases)."""
    ids = list(set(contact_ids))
    aliases: dict[int, dict[str, set[str]]] = {}
    for contact_id, kind, value in ContactAlias.objects.filter(contact_id__in=ids).values_list(
        "contact_id", "kind", "value"
    ):
        aliases.setdefault(contact_id, {}).setdefault(kind, set()).add(value)
    facts: dict[int, ContactFacts] = {}
    rows = Contact.objects.filter(pk__in=ids).values_list(
        "pk", "first_name", "last_name", "email_key", "phone", "external_id"
    )
    for pk, first_name, last_name, key, phone, external_id in rows:
        own = aliases.get(pk, {})
        facts[pk] = ContactFacts(
            id=pk,
            first_name=first_name,
            last_name=last_name,
            email_key=key,
            phone=phone,
            external_id=external_id,
            alias_emails=frozenset(own.get(ContactAlias.Kind.EMAIL, ())),
            alias_phones=frozenset(own.get(ContactAlias.Kind.PHONE, ())),
            alias_external_ids=frozenset(own.get(ContactAlias.Kind.EXTERNAL_ID, ())),
        )
    return facts


@dataclass(frozen=True)
class PairScore:
    score: float
    reasons: list[str]
    # A name alone never makes a candidate: many people share one.
    has_evidence: bool


def _first_names_differ(a: str, b: str) -> bool:
    first_a, first_b = default_process(a), default_process(b)
    if len(first_a) < 2 or len(first_b) < 2:
        return False  # an initial, or nothing, is compatible with anything
    return fuzz.ratio(first_a, first_b) < 60


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _one_digit_apart(a: str | None, b: str | None) -> bool:
    if not a or not b or len(a) != len(b):
        return False
    return sum(x != y for x, y in zip(a, b, strict=True)) == 1


@dataclass
class _Tally:
    points: float = 0.0
    reasons: list[str] = field(default_factory=list)
    evidence: bool = False

    def add(self, points: float, reason: str, *, evidence: bool = True) -> None:
        self.points += points
        self.reasons.append(reason)
        self.evidence = self.evidence or evidence


def _score_phones(a: ContactFacts, b: ContactFacts, tally: _Tally) -> None:
    tails_a = {tail for p in a.phones if (tail := phone_tail(p))}
    tails_b = {tail for p in b.phones if (tail := phone_tail(p))}
    if a.phones & b.phones:
        tally.add(45, "same phone (one holds it as a former number)")
    elif tails_a & tails_b:
        tally.add(35, "same phone number, written differently or under another country code")
    elif _one_digit_apart(a.phone, b.phone):
        tally.add(15, "phone numbers differ by one digit")


def _score_emails(a: ContactFacts, b: ContactFacts, tally: _Tally) -> None:
    mailboxes_a = {box for e in a.emails if (box := mailbox_key(e))}
    mailboxes_b = {box for e in b.emails if (box := mailbox_key(e))}
    if a.emails & b.emails:
        tally.add(45, "same email (one holds it as a former address)")
    elif mailboxes_a & mailboxes_b:
        tally.add(45, "same mailbox (dots or +tag differ)")
    else:
        _score_local_parts(a, b, tally)


def _score_local_parts(a: ContactFacts, b: ContactFacts, tally: _Tally) -> None:
    locals_a = {local for e in a.emails if (local := local_part(e))}
    locals_b = {local for e in b.emails if (local := local_part(e))}
    if shared_locals := locals_a & locals_b:
        if all(local in GENERIC_LOCAL_PARTS or len(local) < 4 for local in shared_locals):
            tally.add(5, "same generic email local part at another domain", evidence=False)
        else:
            tally.add(30, "same email local part at another domain")
    elif locals_a and locals_b:
        # person1 and person2 are numbered accounts of different people: digits must agree.
        best = max(
            (fuzz.ratio(x, y) for x in locals_a for y in locals_b if _digits(x) == _digits(y)),
            default=0.0,
        )
        if best >= 85:
            tally.add(15, f"similar email local part ({best:.0f})")


def _score_external_ids(a: ContactFacts, b: ContactFacts, tally: _Tally) -> None:
    ids_a = {key for x in a.external_ids if (key := external_id_key(x))}
    ids_b = {key for x in b.external_ids if (key := external_id_key(x))}
    if ids_a & ids_b:
        tally.add(40, "same external id, written differently")
    elif a.external_id and b.external_id:
        tally.add(-10, "different external ids", evidence=False)


def _score_names(a: ContactFacts, b: ContactFacts, tally: _Tally) -> None:
    full_a = default_process(f"{a.first_name} {a.last_name}")
    full_b = default_process(f"{b.first_name} {b.last_name}")
    if not (full_a and full_b):
        tally.add(20, "name missing on one side", evidence=False)
        return
    similarity = fuzz.token_sort_ratio(full_a, full_b)
    tally.add(similarity * 0.55, f"name similarity {similarity:.0f}", evidence=False)
    if _first_names_differ(a.first_name, b.first_name):
        tally.add(
            -30, "different first names (family members may share an address)", evidence=False
        )


def pair_score(a: ContactFacts, b: ContactFacts) -> PairScore:
    """0..100, higher is more likely one person, with the reasons in the reviewer's words.
    The reasons never quote names or addresses, so no personal data is copied here."""
    tally = _Tally()
    for score in (_score_phones, _score_emails, _score_external_ids, _score_names):
        score(a, b, tally)
    return PairScore(
        score=round(max(0.0, min(100.0, tally.points)), 1),
        reasons=tally.reasons,
        has_evidence=tally.evidence,
    )
