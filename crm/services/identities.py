"""Tying other ids to a known person: an anonymous visitor who signs in, an old user id.

Segment-style clients name a person by `userId` (our external id) and, before anyone knows who
they are, by an `anonymousId`; an anonymous visitor becomes a contact whose external id is
`anonymous:<anonymousId>` (`anonymous_external_id`). When a call later carries both ids, or an
`alias` call says two ids are one person, `identities_link` folds the other contact into the
identified one with `crm.services.merge.contact_merge` (events, consent, deliveries and the
rest move; the other contact's profile is kept in its ContactMerge; its external id becomes an
alias), so nothing the visitor did is lost and later calls by either id land on one contact.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from crm.models import ConsentRecord, Contact, ContactAlias
from crm.selectors_identity import contacts_by_identifiers
from crm.services.contact_input import ContactInput
from crm.services.contacts import contacts_upsert
from crm.services.merge import ContactMergeError, contact_merge

logger = logging.getLogger(__name__)

ANONYMOUS_PREFIX = "anonymous:"


def anonymous_external_id(anonymous_id: str) -> str:
    """The external id of the contact standing for an anonymous visitor."""
    return ANONYMOUS_PREFIX + anonymous_id


@dataclass(frozen=True)
class IdentityLink:
    """`others` (external ids) are the same person as the contact holding `external_id`, or
    as contact `contact_id` when given (someone known by email or phone only).

    With `anonymous_only`, a contact holding an `other` is not folded in once it has a user
    id of its own (an external id other than that `other`): a browser two people signed in
    on must not merge them, and once the anonymous id belongs to the first, the second's
    calls carrying it are simply theirs."""

    external_id: str
    others: tuple[str, ...]
    anonymous_only: bool = False
    contact_id: int | None = None


def identities_link(links: Sequence[IdentityLink], *, merged_by: str) -> dict[str, int]:
    """Fold every contact holding one of a link's `others` into the link's contact (the one
    holding `external_id`, created when nobody holds it yet; or `contact_id`); an `other`
    nobody holds yet becomes an alias of that contact, so that its first call lands there
    too. Returns {external id: contact id} of the links named by external id.

    Lookups and creations are set-based over the whole batch; merges are one transaction
    each, and only happen the first time two ids meet (afterwards both resolve to one
    contact and nothing is done). A merge that cannot be done (a contact erased or merged
    meanwhile) is logged and skipped: the calls' events are still recorded."""
    if not links:
        return {}
    by_id = [link for link in links if link.contact_id is None]
    wanted = {link.external_id for link in by_id} | {o for link in links for o in link.others}
    found = contacts_by_identifiers(external_ids=wanted)

    def holder(external_id: str) -> int | None:
        return found.get((ContactAlias.Kind.EXTERNAL_ID.value, external_id))

    missing = sorted({link.external_id for link in by_id if holder(link.external_id) is None})
    created = contacts_upsert(
        [ContactInput(external_id=external_id) for external_id in missing],
        source=ConsentRecord.Source.API,
    )
    contact_of = {link.external_id: holder(link.external_id) or 0 for link in by_id}
    contact_of.update(
        {
            external_id: result.contact_id
            for external_id, result in zip(missing, created, strict=True)
        }
    )
    holders = {
        contact_id
        for link in links
        for other in link.others
        if (contact_id := holder(other)) is not None
    }
    own_external_id = dict(Contact.objects.filter(pk__in=holders).values_list("pk", "external_id"))
    aliases: dict[str, ContactAlias] = {}
    merges: list[tuple[int, int]] = []
    for link in links:
        target = link.contact_id or contact_of[link.external_id]
        for other in link.others:
            other_contact = holder(other)
            if other_contact is None:
                aliases.setdefault(
                    other,
                    ContactAlias(
                        contact_id=target, kind=ContactAlias.Kind.EXTERNAL_ID, value=other
                    ),
                )
                continue
            own = own_external_id.get(other_contact)
            if link.anonymous_only and own and own != other:
                continue  # someone with a user id holds this anonymous id: theirs, not ours
            if other_contact != target and (target, other_contact) not in merges:
                merges.append((target, other_contact))
    # A concurrent request may have aliased the same id first; either contact is this person.
    ContactAlias.objects.bulk_create(list(aliases.values()), ignore_conflicts=True)
    _merge_pairs(merges, merged_by=merged_by)
    return contact_of


def _merge_pairs(pairs: Sequence[tuple[int, int]], *, merged_by: str) -> None:
    if not pairs:
        return
    contacts = Contact.objects.in_bulk({contact_id for pair in pairs for contact_id in pair})
    gone: set[int] = set()
    for survivor_id, duplicate_id in pairs:
        survivor, duplicate = contacts.get(survivor_id), contacts.get(duplicate_id)
        if survivor is None or duplicate is None or {survivor_id, duplicate_id} & gone:
            continue
        try:
            contact_merge(survivor=survivor, duplicate=duplicate, merged_by=merged_by)
        except ContactMergeError as exc:
            logger.warning("not linking contact #%d to #%d: %s", duplicate_id, survivor_id, exc)
            continue
        gone.add(duplicate_id)
