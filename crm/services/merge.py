"""Merging two contacts that are one person.

The duplicate's rows (events, consent entries, opt-ins, and whatever the higher layers keep
per contact: segment memberships, deliveries, responses, firings) move to the survivor; the
survivor fills its blanks from the duplicate; the duplicate's addresses become aliases of the
survivor; the duplicate's row goes, and a ContactMerge keeps its full profile. Nothing is lost.

crm cannot import the layers above it, so rows are moved generically: every foreign key to
Contact in any installed app, now or later, is found through the model's reverse relations.
An app whose rows are unique per contact (one membership per segment and contact, say)
listens to crm.signals.contact_merging and resolves its collisions before the move.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, models, transaction
from django.db.models import Q
from django.utils import timezone

from crm.models import Contact, ContactAlias, ContactMerge, MergeCandidate
from crm.services.duplicates.candidates import candidates_rescore
from crm.signals import contact_merged, contact_merging

# Profile fields the survivor takes from the duplicate when its own are blank.
FILL_FIELDS = ("first_name", "last_name", "locale", "timezone", "country")
# Identifiers: taken when blank, otherwise kept as aliases so lookups by them find the survivor.
IDENTIFIER_FIELDS = ("email", "phone", "external_id")
# What counts towards completeness when choosing which of two contacts survives.
COMPLETENESS_FIELDS = (*IDENTIFIER_FIELDS, *FILL_FIELDS)


class ContactMergeError(Exception):
    """A merge that cannot be done; the message says which contacts and why."""


def contact_completeness(contact: Contact) -> int:
    """How many profile fields are filled, plus one for any custom attributes."""
    filled = sum(1 for name in COMPLETENESS_FIELDS if getattr(contact, name))
    return filled + (1 if contact.attributes else 0)


def merge_pick_survivor(*, a: Contact, b: Contact) -> tuple[Contact, Contact]:
    """(survivor, duplicate): the more complete profile survives; between equally complete
    ones, the older (then the lower id), which usually carries the longer history."""
    ordered = sorted(
        (a, b), key=lambda contact: (-contact_completeness(contact), contact.created_at, contact.pk)
    )
    return ordered[0], ordered[1]


def contact_snapshot(contact: Contact) -> dict[str, Any]:
    """Every stored field of the contact and its aliases, as JSON-safe values."""
    data: dict[str, Any] = {
        field.attname: field.value_from_object(contact) for field in Contact._meta.concrete_fields
    }
    data["aliases"] = list(
        ContactAlias.objects.filter(contact_id=contact.pk)
        .order_by("id")
        .values("kind", "value", "created_at")
    )
    loaded: dict[str, Any] = json.loads(json.dumps(data, cls=DjangoJSONEncoder))
    return loaded


def contact_foreign_keys() -> list[models.ForeignKey[Any, Any]]:
    """Every foreign key to Contact from any installed app, including hidden ones
    (related_name="+") and the through tables of many-to-many fields, except the merge
    bookkeeping that contact_merge handles itself."""
    keys: list[models.ForeignKey[Any, Any]] = []
    for relation in Contact._meta.get_fields(include_hidden=True):
        if not relation.auto_created or relation.concrete:
            continue
        if not (relation.one_to_many or relation.one_to_one):
            continue  # a many-to-many is moved through the foreign keys of its through table
        field = relation.remote_field
        if not isinstance(field, models.ForeignKey):
            continue
        model = field.model
        if model is MergeCandidate or model._meta.proxy or field.remote_field.parent_link:
            continue
        keys.append(field)
    return keys


def _move_rows(*, survivor: Contact, duplicate: Contact) -> dict[str, int]:
    moved: dict[str, int] = {}
    for field in contact_foreign_keys():
        model = field.model
        default = model._default_manager.filter(**{field.name: duplicate})
        try:
            # A model whose queryset refuses update() (the append-only consent ledger) offers
            # reassign_contact for exactly this move; everything else is a plain UPDATE.
            if field.attname == "contact_id" and hasattr(default, "reassign_contact"):
                count = default.reassign_contact(to_contact_id=survivor.pk)
            else:
                count = model._base_manager.filter(**{field.name: duplicate}).update(
                    **{field.name: survivor}
                )
        except IntegrityError as exc:
            raise ContactMergeError(
                f"merging contact #{duplicate.pk} into #{survivor.pk}: rows of "
                f"{model._meta.label}.{field.name} collide on a unique constraint; a receiver "
                f"of crm.signals.contact_merging must resolve them first ({exc})"
            ) from exc
        if count:
            moved[model._meta.label] = moved.get(model._meta.label, 0) + count
    return moved


def _carry_over_candidates(*, survivor_id: int, duplicate_id: int) -> list[int]:
    """Pairs the duplicate was in become pairs of the survivor. A dismissal carries over
    (if the duplicate is not X, neither is the survivor). Returns the open candidates that
    changed, to be scored again."""
    theirs = list(
        MergeCandidate.objects.filter(
            Q(contact_a_id=duplicate_id) | Q(contact_b_id=duplicate_id)
        ).order_by("id")
    )
    if not theirs:
        return []
    ours: dict[int, MergeCandidate] = {}
    for candidate in MergeCandidate.objects.filter(
        Q(contact_a_id=survivor_id) | Q(contact_b_id=survivor_id)
    ):
        other = (
            candidate.contact_b_id
            if candidate.contact_a_id == survivor_id
            else candidate.contact_a_id
        )
        ours[other] = candidate
    rescore: list[int] = []
    for candidate in theirs:
        other = (
            candidate.contact_b_id
            if candidate.contact_a_id == duplicate_id
            else candidate.contact_a_id
        )
        if other == survivor_id:
            candidate.delete()  # this pair is being merged; ContactMerge keeps its score
            continue
        existing = ours.get(other)
        if existing is not None:
            if (
                candidate.status == MergeCandidate.Status.DISMISSED
                and existing.status == MergeCandidate.Status.OPEN
            ):
                existing.status = MergeCandidate.Status.DISMISSED
                existing.reviewed_at = candidate.reviewed_at
                existing.reviewed_by_id = candidate.reviewed_by_id
                existing.save(update_fields=["status", "reviewed_at", "reviewed_by"])
            elif existing.status == MergeCandidate.Status.OPEN:
                rescore.append(existing.pk)
            candidate.delete()
            continue
        candidate.contact_a_id, candidate.contact_b_id = sorted((survivor_id, other))
        candidate.save(update_fields=["contact_a", "contact_b"])
        ours[other] = candidate
        if candidate.status == MergeCandidate.Status.OPEN:
            rescore.append(candidate.pk)
    return rescore


def _fill_survivor(*, survivor: Contact, duplicate: Contact) -> None:
    changed: list[str] = []
    for name in (*FILL_FIELDS, *IDENTIFIER_FIELDS):
        if not getattr(survivor, name) and getattr(duplicate, name):
            setattr(survivor, name, getattr(duplicate, name))
            changed.append(name)
    attributes = {**(duplicate.attributes or {}), **(survivor.attributes or {})}
    if attributes != survivor.attributes:
        survivor.attributes = attributes
        changed.append("attributes")
    for name in ("last_activity_at", "last_purchase_at"):
        mine, theirs = getattr(survivor, name), getattr(duplicate, name)
        if theirs is not None and (mine is None or theirs > mine):
            setattr(survivor, name, theirs)
            changed.append(name)
    if duplicate.created_at < survivor.created_at:
        survivor.created_at = duplicate.created_at
        changed.append("created_at")
    if changed:
        survivor.save(update_fields=[*changed, "updated_at"])


def _alias_identifiers(*, survivor: Contact, duplicate_identifiers: dict[str, str | None]) -> int:
    """The duplicate's addresses the survivor did not take over become its aliases."""
    own = {
        ContactAlias.Kind.EMAIL: survivor.email_key,
        ContactAlias.Kind.PHONE: survivor.phone,
        ContactAlias.Kind.EXTERNAL_ID: survivor.external_id,
    }
    created = 0
    for kind, value in duplicate_identifiers.items():
        if not value or own[ContactAlias.Kind(kind)] == value:
            continue
        # An alias of the same address elsewhere is stale: the duplicate held it last.
        ContactAlias.objects.update_or_create(
            kind=kind, value=value, defaults={"contact": survivor}
        )
        created += 1
    return created


def contact_merge(
    *, survivor: Contact, duplicate: Contact, merged_by: str, score: float | None = None
) -> ContactMerge:
    """Merge `duplicate` into `survivor` in one transaction and return the audit record.

    Raises ContactMergeError when the two are the same contact, one of them is gone (merged
    or deleted meanwhile) or erased, or when a higher app's rows collide and no receiver of
    contact_merging resolved them; then nothing has changed.
    """
    if survivor.pk == duplicate.pk:
        raise ContactMergeError(f"contact #{survivor.pk} cannot be merged into itself")
    with transaction.atomic():
        locked = Contact.objects.select_for_update().in_bulk([survivor.pk, duplicate.pk])
        for contact in (survivor, duplicate):
            if contact.pk not in locked:
                raise ContactMergeError(
                    f"contact #{contact.pk} no longer exists (merged or deleted meanwhile)"
                )
            if locked[contact.pk].is_erased:
                raise ContactMergeError(f"contact #{contact.pk} is erased and cannot be merged")
        keep, gone = locked[survivor.pk], locked[duplicate.pk]

        snapshot = contact_snapshot(gone)
        identifiers: dict[str, str | None] = {
            ContactAlias.Kind.EMAIL: gone.email_key,
            ContactAlias.Kind.PHONE: gone.phone,
            ContactAlias.Kind.EXTERNAL_ID: gone.external_id,
        }
        contact_merging.send(sender=Contact, survivor_id=keep.pk, duplicate_id=gone.pk)
        rescore = _carry_over_candidates(survivor_id=keep.pk, duplicate_id=gone.pk)
        moved = _move_rows(survivor=keep, duplicate=gone)
        gone_uuid = gone.uuid
        # The duplicate goes before the survivor takes over its identifiers: they are unique.
        Contact.objects.filter(pk=gone.pk).delete()
        _fill_survivor(survivor=keep, duplicate=gone)
        _alias_identifiers(survivor=keep, duplicate_identifiers=identifiers)
        audit = ContactMerge.objects.create(
            survivor=keep,
            duplicate_uuid=gone_uuid,
            duplicate_snapshot=snapshot,
            moved=moved,
            score=score,
            merged_by=merged_by[:150],
            merged_at=timezone.now(),
        )
        if rescore:
            candidates_rescore(candidate_ids=rescore)

        survivor_id = keep.pk
        transaction.on_commit(
            lambda: contact_merged.send(
                sender=Contact, survivor_id=survivor_id, duplicate_uuid=gone_uuid
            )
        )
    # The caller's instances now describe the merged state.
    survivor.refresh_from_db()
    return audit


def candidate_merge(*, candidate_id: int, merged_by: str) -> ContactMerge | None:
    """Merge the two contacts of an open candidate, the more complete (then older) one
    surviving. None when the candidate is no longer open: an earlier merge removed it, or
    someone dismissed it meanwhile."""
    candidate = (
        MergeCandidate.objects.select_related("contact_a", "contact_b")
        .filter(pk=candidate_id, status=MergeCandidate.Status.OPEN)
        .first()
    )
    if candidate is None:
        return None
    survivor, duplicate = merge_pick_survivor(a=candidate.contact_a, b=candidate.contact_b)
    return contact_merge(
        survivor=survivor, duplicate=duplicate, merged_by=merged_by, score=candidate.score
    )
