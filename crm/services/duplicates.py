"""Finding contacts that are likely the same person, for review as MergeCandidate rows.

Exact matches on email, phone or external id never get here: the database keeps those
unique and contact_upsert merges at write time. What is left are near misses: a typo in a
name with the same subscriber number, the same mailbox at another domain, gmail's dots and
+tags, CUST-00042 against cust00042, an old address kept as an alias.

Never all pairs. Blocking in SQL groups contacts by a cheap key (phone tail, email local
part, last name + first initial, external id without punctuation, alias equal to someone's
identifier); only contacts sharing a key are paired, blocks larger than `max_block` are
skipped as not telling (a thousand "smith j" are not a thousand duplicates), and pairs are
scored with rapidfuzz in batches. Re-running is idempotent: a pair is one row (contact_a <
contact_b), an open candidate is re-scored, and a dismissed pair is never proposed again.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import (
    Case,
    CharField,
    Count,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Concat, Left, Lower, Replace, Right, StrIndex
from django.utils import timezone
from rapidfuzz import fuzz
from rapidfuzz.utils import default_process

from crm.models import Contact, ContactAlias, MergeCandidate

DEFAULT_MIN_SCORE = 50.0
DEFAULT_MAX_BLOCK = 50
DEFAULT_BATCH_SIZE = 1000

# Mailboxes that many unrelated people share the local part of.
GENERIC_LOCAL_PARTS = frozenset(
    {
        "admin",
        "contact",
        "hello",
        "hi",
        "info",
        "mail",
        "office",
        "post",
        "sales",
        "service",
        "support",
        "team",
        "test",
    }
)
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
PHONE_TAIL = 9

Progress = Callable[[str], None]


# --- Keys, computed the same way in Python as the SQL blocks compute them -----------------


def mailbox_key(email_key: str | None) -> str | None:
    """The mailbox an address delivers to: +tags dropped, and for gmail the dots too."""
    if not email_key or "@" not in email_key:
        return None
    local, _, domain = email_key.rpartition("@")
    local = local.split("+", 1)[0]
    if domain in GMAIL_DOMAINS:
        local, domain = local.replace(".", ""), "gmail.com"
    return f"{local}@{domain}"


def local_part(email_key: str | None) -> str | None:
    """The local part without +tag and dots, as the email block groups it."""
    if not email_key or "@" not in email_key:
        return None
    return email_key.rpartition("@")[0].split("+", 1)[0].replace(".", "") or None


def phone_tail(phone: str | None) -> str | None:
    """The last digits of a number: the same subscriber number under another country code
    or written another way shares them."""
    digits = re.sub(r"\D", "", phone or "")
    return digits[-PHONE_TAIL:] if len(digits) >= 7 else None


def external_id_key(external_id: str | None) -> str | None:
    """CUST-00042, cust_00042 and cust42 are the same id written three ways."""
    if not external_id:
        return None
    compact = re.sub(r"[^0-9a-z]", "", external_id.lower())
    return re.sub(r"(?<!\d)0+(?=\d)", "", compact) or None


# --- What is known about a contact for scoring --------------------------------------------


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


# --- Scoring ------------------------------------------------------------------------------


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


# --- Blocking in SQL ----------------------------------------------------------------------


def _live() -> QuerySet[Contact]:
    return Contact.objects.filter(is_erased=False)


def _block_querysets() -> dict[str, QuerySet[Contact]]:
    """Each block: live contacts annotated with `k`, the key that groups them. The keys
    follow phone_tail, local_part and external_id_key closely enough to pair the contacts
    those would; the scoring then looks at the real values."""
    compact: Func = Lower(F("external_id"))
    for char in ("-", "_", " ", ".", "/", "#"):
        compact = Replace(compact, Value(char), Value(""))
    email = (
        _live()
        .filter(email_key__contains="@")
        .annotate(_local=Left("email_key", StrIndex("email_key", Value("@")) - 1))
        .annotate(_plus=StrIndex("_local", Value("+")))
        .annotate(
            _untagged=Case(
                When(_plus__gt=0, then=Left("_local", F("_plus") - 1)),
                default=F("_local"),
                output_field=CharField(),
            )
        )
        .annotate(k=Replace("_untagged", Value("."), Value("")))
    )
    name = (
        _live()
        .exclude(last_name="")
        .annotate(
            k=Concat(
                Lower("last_name"),
                Value(" "),
                Lower(Left("first_name", 1)),
                output_field=CharField(),
            )
        )
    )
    return {
        "phone number": _live().filter(phone__isnull=False).annotate(k=Right("phone", PHONE_TAIL)),
        "email local part": email,
        "last name and first initial": name,
        "external id": _live().filter(external_id__isnull=False).annotate(k=compact),
    }


# The key may be NULL or empty (no phone digits, an email without a local part).
_NO_KEY = Q(k__isnull=True) | Q(k="")


def _blocks(queryset: QuerySet[Any], *, max_block: int) -> Iterator[list[int]]:
    """Groups of 2..max_block contact ids sharing the key `k`, streamed in key order; the
    grouping and the size limit are one GROUP BY in the database."""
    keys = (
        queryset.exclude(_NO_KEY)
        .values("k")
        .annotate(n=Count("id"))
        .filter(n__gt=1, n__lte=max_block)
        .values("k")
    )
    rows = queryset.filter(Q(k__in=keys)).order_by("k", "id").values_list("k", "id")
    for _key, group in itertools.groupby(rows.iterator(chunk_size=2000), key=lambda row: row[0]):
        yield [contact_id for _, contact_id in group]


def _oversized_blocks(queryset: QuerySet[Any], *, max_block: int) -> int:
    return int(
        queryset.exclude(_NO_KEY)
        .values("k")
        .annotate(n=Count("id"))
        .filter(n__gt=max_block)
        .count()
    )


def _alias_pairs() -> Iterator[tuple[int, int]]:
    """A former address of one contact that is another contact's current one."""
    for kind, column in (
        (ContactAlias.Kind.PHONE, "phone"),
        (ContactAlias.Kind.EMAIL, "email_key"),
        (ContactAlias.Kind.EXTERNAL_ID, "external_id"),
    ):
        holder = _live().filter(**{column: OuterRef("value")}).values("pk")[:1]
        rows = (
            ContactAlias.objects.filter(kind=kind, contact__is_erased=False)
            .annotate(other=Subquery(holder))
            .filter(other__isnull=False)
            .exclude(other=F("contact_id"))
            .values_list("contact_id", "other")
        )
        yield from rows.iterator(chunk_size=2000)


# --- Detection ----------------------------------------------------------------------------


@dataclass
class DetectionStats:
    pairs_scored: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    below_threshold: int = 0
    already_reviewed: int = 0
    oversized_blocks: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        skipped = sum(self.oversized_blocks.values())
        return (
            f"{self.pairs_scored} pairs scored: {self.created} new candidates, "
            f"{self.updated} re-scored, {self.unchanged} unchanged, "
            f"{self.already_reviewed} already reviewed, {self.below_threshold} below the "
            f"threshold; {skipped} blocks too large to compare were skipped"
        )


def _save_scored(pairs: list[tuple[int, int]], *, min_score: float, stats: DetectionStats) -> None:
    facts = contact_facts(itertools.chain.from_iterable(pairs))
    lows = {a for a, _ in pairs}
    highs = {b for _, b in pairs}
    existing = {
        (candidate.contact_a_id, candidate.contact_b_id): candidate
        for candidate in MergeCandidate.objects.filter(
            contact_a_id__in=lows, contact_b_id__in=highs
        )
    }
    new: list[MergeCandidate] = []
    changed: list[MergeCandidate] = []
    for a, b in pairs:
        stats.pairs_scored += 1
        current = existing.get((a, b))
        if current is not None and current.status != MergeCandidate.Status.OPEN:
            stats.already_reviewed += 1
            continue
        if a not in facts or b not in facts:
            continue  # merged or deleted since the block was read
        result = pair_score(facts[a], facts[b])
        if current is not None:
            if current.score == result.score and current.reasons == result.reasons:
                stats.unchanged += 1
            else:
                current.score, current.reasons = result.score, result.reasons
                changed.append(current)
            continue
        if not result.has_evidence or result.score < min_score:
            stats.below_threshold += 1
            continue
        new.append(
            MergeCandidate(
                contact_a_id=a, contact_b_id=b, score=result.score, reasons=result.reasons
            )
        )
    if new:
        # ignore_conflicts: a detection running beside this one may have written a pair too.
        MergeCandidate.objects.bulk_create(new, ignore_conflicts=True)
        stats.created += len(new)
    if changed:
        MergeCandidate.objects.bulk_update(changed, ["score", "reasons"])
        stats.updated += len(changed)


def duplicates_find(
    *,
    min_score: float = DEFAULT_MIN_SCORE,
    max_block: int = DEFAULT_MAX_BLOCK,
    batch_size: int = DEFAULT_BATCH_SIZE,
    progress: Progress | None = None,
) -> DetectionStats:
    """Propose every likely duplicate pair scoring at least `min_score` as an open
    MergeCandidate; re-score open ones; leave dismissed ones alone. Reports progress
    through `progress` once per block type and once per batch of scored pairs."""
    say = progress or (lambda message: None)
    stats = DetectionStats()
    seen: set[tuple[int, int]] = set()
    pending: list[tuple[int, int]] = []

    def flush() -> None:
        if pending:
            _save_scored(pending, min_score=min_score, stats=stats)
            pending.clear()
            say(f"  {stats.pairs_scored} pairs scored, {stats.created} new candidates so far")

    def add(a: int, b: int) -> None:
        pair = (a, b) if a < b else (b, a)
        if pair in seen or a == b:
            return
        seen.add(pair)
        pending.append(pair)
        if len(pending) >= batch_size:
            flush()

    for name, queryset in _block_querysets().items():
        say(f"Blocking by {name}...")
        stats.oversized_blocks[name] = _oversized_blocks(queryset, max_block=max_block)
        for group in _blocks(queryset, max_block=max_block):
            for a, b in itertools.combinations(group, 2):
                add(a, b)
        flush()
    say("Blocking by former addresses (aliases)...")
    for a, b in _alias_pairs():
        add(a, b)
    flush()
    say(stats.summary())
    return stats


def candidates_rescore(*, candidate_ids: Iterable[int]) -> int:
    """Score open candidates again from the contacts as they are now (after a merge moved
    one side); returns how many changed."""
    candidates = list(
        MergeCandidate.objects.filter(pk__in=list(candidate_ids), status=MergeCandidate.Status.OPEN)
    )
    facts = contact_facts(
        itertools.chain.from_iterable((c.contact_a_id, c.contact_b_id) for c in candidates)
    )
    changed = []
    for candidate in candidates:
        result = pair_score(facts[candidate.contact_a_id], facts[candidate.contact_b_id])
        if (candidate.score, candidate.reasons) != (result.score, result.reasons):
            candidate.score, candidate.reasons = result.score, result.reasons
            changed.append(candidate)
    MergeCandidate.objects.bulk_update(changed, ["score", "reasons"])
    return len(changed)


def candidate_dismiss(*, candidates: QuerySet[MergeCandidate], reviewed_by_id: int | None) -> int:
    """Mark open pairs as not duplicates; detection never proposes them again."""
    return candidates.filter(status=MergeCandidate.Status.OPEN).update(
        status=MergeCandidate.Status.DISMISSED,
        reviewed_at=timezone.now(),
        reviewed_by_id=reviewed_by_id,
    )
