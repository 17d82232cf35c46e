"""GDPR: export everything held about a person, and erase their personal data.

Export walks the relations that point at Contact generically, so that rows of the layers
above (deliveries, responses, segment memberships) are included without crm importing them.
Erasure blanks what identifies the person but keeps the rows that anonymous aggregates and
the consent ledger rely on, and leaves hashed suppression entries behind so that the person
is never imported back into marketing. The layers above scrub their own rows when they
receive crm.signals.contact_erased.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable
from typing import Any, TypedDict

from django.core import serializers
from django.core.exceptions import ObjectDoesNotExist
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Q
from django.db.models.fields.reverse_related import ForeignObjectRel
from django.utils import timezone

from core.batching import chunks
from crm.models import (
    Channel,
    ConsentRecord,
    Contact,
    ContactAlias,
    ContactMerge,
    DoubleOptIn,
    Event,
    MergeCandidate,
    Suppression,
)
from crm.normalise import address_hash, email_key
from crm.selectors import consent_current
from crm.signals import contact_erased

logger = logging.getLogger(__name__)

EXPORT_FORMAT = "cadence.contact-export/1"
# How far export follows rows that hang off the person's rows (contact -> delivery ->
# response): one level is the contact's own rows, deeper levels follow CASCADE links only,
# because a row that dies with its parent belongs to the same person.
_EXPORT_DEPTH = 3
_CHUNK = 500

# Proof keys that identify a row or a moment, not a person; everything else in a consent
# record's proof (IP addresses, user agents, names, addresses) goes on erasure.
_PROOF_KEEP_KEYS = frozenset({"file", "row"})
_PROOF_KEEP_SUFFIXES = ("_id", "_at", "_version")
_PROOF_DROP_KEYS = frozenset({"external_id", "client_id"})


class ContactExport(TypedDict):
    format: str
    exported_at: str
    contact_uuid: str
    profile: dict[str, Any]
    current_consent: dict[str, str]
    records: dict[str, list[dict[str, Any]]]
    counts: dict[str, int]


class ContactNotFound(LookupError):
    pass


class ContactAmbiguous(LookupError):
    pass


def contact_for_identifier(*, identifier: str) -> Contact:
    """The contact named by its public uuid, its external id or an email address (also an
    address it had before a merge). Raises ContactNotFound or ContactAmbiguous with a message
    that names the identifier."""
    value = identifier.strip()
    if not value:
        raise ContactNotFound("the identifier is empty: give a uuid, an external id or an email")
    try:
        public_id = uuid.UUID(value)
    except ValueError:
        public_id = None
    if public_id is not None:
        found = Contact.objects.filter(uuid=public_id).first()
        if found is not None:
            return found
    key = email_key(value)
    alias_kinds = Q(kind=ContactAlias.Kind.EXTERNAL_ID, value=value)
    matches = Q(external_id=value)
    if "@" in value:
        matches |= Q(email_key=key)
        alias_kinds |= Q(kind=ContactAlias.Kind.EMAIL, value=key)
    alias_owner_ids = ContactAlias.objects.filter(alias_kinds).values("contact_id")
    found_list = list(Contact.objects.filter(matches | Q(pk__in=alias_owner_ids))[:3])
    if not found_list:
        raise ContactNotFound(f"no contact has the uuid, external id or email {value!r}")
    if len(found_list) > 1:
        uuids = ", ".join(str(c.uuid) for c in found_list)
        raise ContactAmbiguous(f"{value!r} names more than one contact ({uuids}); use a uuid")
    return found_list[0]


def _reverse_relations(model: type[models.Model]) -> list[ForeignObjectRel]:
    # include_hidden: relations declared with related_name="+" (merge candidates) still
    # point at the person.
    return [
        field
        for field in model._meta.get_fields(include_hidden=True)
        if isinstance(field, ForeignObjectRel) and field.related_model is not None
    ]


def _serialise(rows: Iterable[models.Model]) -> list[dict[str, Any]]:
    return [{"id": item["pk"], **item["fields"]} for item in serializers.serialize("python", rows)]


def _related_rows(contact: Contact) -> dict[str, dict[Any, models.Model]]:
    """{model label: {pk: row}} for every row that points at the contact, and rows that
    cascade from those, found with one query per relation and chunk of ids."""
    found: dict[str, dict[Any, models.Model]] = defaultdict(dict)
    frontier: dict[type[models.Model], list[Any]] = {Contact: [contact.pk]}
    for depth in range(_EXPORT_DEPTH):
        next_frontier: dict[type[models.Model], list[Any]] = defaultdict(list)
        for parent_model, parent_ids in frontier.items():
            for relation in _reverse_relations(parent_model):
                child_model = relation.related_model
                assert isinstance(child_model, type)
                if child_model is Contact:
                    continue
                if depth > 0 and (
                    relation.many_to_many or relation.on_delete is not models.CASCADE
                ):
                    continue
                label = child_model._meta.label_lower
                lookup = f"{relation.field.name}__in"
                for ids in chunks(parent_ids, _CHUNK):
                    rows = child_model._default_manager.filter(**{lookup: ids}).order_by("pk")
                    for row in rows.iterator(chunk_size=_CHUNK):
                        if row.pk not in found[label]:
                            found[label][row.pk] = row
                            next_frontier[child_model].append(row.pk)
        frontier = next_frontier
        if not frontier:
            break
    return found


def contact_export(*, contact: Contact) -> dict[str, Any]:
    """Everything held about the person as a JSON-safe dict: the profile, the current consent,
    and every related row by model label (crm.consentrecord, crm.event, crm.contactalias, and
    the rows of the layers above)."""
    rows = _related_rows(contact)
    records = {label: _serialise(by_pk.values()) for label, by_pk in sorted(rows.items())}
    current = consent_current([contact.pk]).get(contact.pk, {})
    export: ContactExport = {
        "format": EXPORT_FORMAT,
        "exported_at": timezone.now().isoformat(),
        "contact_uuid": str(contact.uuid),
        "profile": _serialise([contact])[0],
        "current_consent": {f"{ch}/{purpose}": status for (ch, purpose), status in current.items()},
        "records": records,
        "counts": {label: len(items) for label, items in records.items()},
    }
    # A round trip through the encoder turns datetimes, decimals and uuids into strings, so
    # the caller can hand the dict to any JSON writer.
    result: dict[str, Any] = json.loads(json.dumps(export, cls=DjangoJSONEncoder))
    return result


def _proof_anonymised(proof: Any) -> dict[str, Any]:
    if not isinstance(proof, dict):
        return {"anonymised": True}
    kept = {
        key: value
        for key, value in proof.items()
        if key not in _PROOF_DROP_KEYS
        and (key in _PROOF_KEEP_KEYS or key.endswith(_PROOF_KEEP_SUFFIXES))
        and isinstance(value, str | int | float | bool)
    }
    return {**kept, "anonymised": True}


def _addresses_to_suppress(contact: Contact) -> set[tuple[str, str]]:
    addresses: set[tuple[str, str]] = set()
    if contact.email:
        addresses.add((Channel.EMAIL, contact.email))
    if contact.phone:
        addresses.add((Channel.SMS, contact.phone))
    aliases = ContactAlias.objects.filter(
        contact=contact, kind__in=[ContactAlias.Kind.EMAIL, ContactAlias.Kind.PHONE]
    ).values_list("kind", "value")
    for kind, value in aliases:
        addresses.add((Channel.EMAIL if kind == ContactAlias.Kind.EMAIL else Channel.SMS, value))
    # A merge kept the duplicate's profile as it was; its addresses are the person's too.
    snapshots = ContactMerge.objects.filter(survivor=contact).values_list(
        "duplicate_snapshot", flat=True
    )
    for snapshot in snapshots:
        if not isinstance(snapshot, dict):
            continue
        for channel, field in ((Channel.EMAIL, "email"), (Channel.SMS, "phone")):
            kept = snapshot.get(field)
            if isinstance(kept, str) and kept:
                addresses.add((channel, kept))
    return addresses


def contact_erase(*, contact: Contact, requested_by: str) -> None:
    """Remove the person's personal data; idempotent. Keeps: the contact row (as an erased
    shell), consent ledger rows (anonymised), events (type, time and value only), and a
    hashed suppression entry for every address the person had. Sends contact_erased after
    commit so that the layers above scrub their own rows."""
    now = timezone.now()
    with transaction.atomic():
        try:
            locked = Contact.objects.select_for_update().get(pk=contact.pk)
        except ObjectDoesNotExist as exc:
            raise ContactNotFound(f"contact {contact.uuid} no longer exists") from exc

        addresses = _addresses_to_suppress(locked)
        Suppression.objects.bulk_create(
            [
                Suppression(
                    channel=channel,
                    address_hash=address_hash(channel, address),
                    reason=Suppression.Reason.ERASED,
                    note=f"erasure requested by {requested_by}"[:255],
                    created_at=now,
                )
                for channel, address in sorted(addresses)
            ],
            ignore_conflicts=True,
        )

        ContactAlias.objects.filter(contact=locked).delete()

        # The ledger refuses updates except for anonymising, one entry at a time; a person's
        # ledger holds a handful of entries, so this is a few small UPDATEs.
        for record in ConsentRecord.objects.filter(contact=locked).only(
            "id", "ip_address", "user_agent", "proof"
        ):
            anonymised_proof = _proof_anonymised(record.proof)
            if (
                record.ip_address is None
                and not record.user_agent
                and record.proof == anonymised_proof
            ):
                continue
            record.ip_address = None
            record.user_agent = ""
            record.proof = anonymised_proof
            record._anonymising = True  # type: ignore[attr-defined]
            record.save(update_fields=["ip_address", "user_agent", "proof"])

        # One UPDATE however many events: type, time and value stay for anonymous aggregates;
        # the client's id goes too, because an order number is a key into the shop's records
        # of this person.
        Event.objects.filter(contact=locked).update(properties={}, client_id=None)

        DoubleOptIn.objects.filter(contact=locked).update(request_ip=None, request_user_agent="")
        DoubleOptIn.objects.filter(contact=locked, status=DoubleOptIn.Status.PENDING).update(
            status=DoubleOptIn.Status.EXPIRED
        )
        ContactMerge.objects.filter(survivor=locked).update(duplicate_snapshot={"erased": True})
        # An erased shell must not be merged into a real person by a later review.
        MergeCandidate.objects.filter(
            Q(contact_a=locked) | Q(contact_b=locked), status=MergeCandidate.Status.OPEN
        ).update(status=MergeCandidate.Status.DISMISSED, reviewed_at=now)

        Contact.objects.filter(pk=locked.pk).update(
            first_name="",
            last_name="",
            email=None,
            email_key=None,
            phone=None,
            external_id=None,
            locale="",
            attributes={},
            is_erased=True,
            erased_at=locked.erased_at or now,
            updated_at=now,
        )
        contact_id = locked.pk
        transaction.on_commit(lambda: contact_erased.send(sender=Contact, contact_id=contact_id))

    logger.info(
        "Erased contact %s on request of %s (%d addresses suppressed)",
        contact.uuid,
        requested_by,
        len(addresses),
    )
    contact.refresh_from_db()
