"""Creating and updating contacts from the outside world (API, CSV import), in batches.

`contacts_upsert` writes a batch of `ContactInput`s (parsed by
`crm.services.contact_input.contact_input_parse`) with a handful of queries, whatever the
batch size: one identity lookup, one load, one bulk insert, one bulk update, one consent read,
one read of the person's own withdrawals (consent precedence) and one consent insert. A batch
behaves as if its inputs were applied one after another.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from core.batching import chunks
from crm.models import Channel, Contact, Suppression
from crm.normalise import (
    address_hash,
    email_key,
)
from crm.selectors_identity import contacts_by_identifiers
from crm.services.consent import (
    ERASED,
    SUPPRESSED,
    ConsentChange,
    ConsentOutcome,
    build_consent_record,
    consent_changes_decide,
    consent_record_bulk,
)
from crm.services.contact_input import (
    IDENTIFIER_FIELDS,
    PROFILE_FIELDS,
    ConsentInput,
    ContactInput,
    IdentityKey,
)

_CHUNK = 500
_MAX_PASSES = 5


@dataclass
class UpsertResult:
    contact_id: int
    created: bool
    changed: bool
    # One per consent entry of the input, in order: recorded, unchanged or refused (why).
    consent: list[ConsentOutcome] = field(default_factory=list)


# --- Identity lookup -------------------------------------------------------------------------


# --- Upsert ----------------------------------------------------------------------------------

_STORED_FIELDS = (*IDENTIFIER_FIELDS, *PROFILE_FIELDS, "attributes")


class _Entity:
    """One contact as the batch sees it: an existing row (contact_id set) or a new one."""

    def __init__(self, contact_id: int | None, values: dict[str, Any]) -> None:
        self.contact_id = contact_id
        self.values = values
        self.original = dict(values) if contact_id is not None else None
        self.forward: _Entity | None = None  # set when folded into another entity

    def resolve(self) -> _Entity:
        entity = self
        while entity.forward is not None:
            entity = entity.forward
        return entity


def _empty_values() -> dict[str, Any]:
    values: dict[str, Any] = dict.fromkeys(IDENTIFIER_FIELDS)
    values.update(dict.fromkeys(PROFILE_FIELDS, ""))
    values["attributes"] = {}
    return values


def _is_blank(value: Any) -> bool:
    return value is None or value == "" or value == {}


def _fold(*, winner: _Entity, loser: _Entity) -> None:
    """Fill the winner's blanks from the loser; the loser now points at the winner."""
    for name in (*IDENTIFIER_FIELDS, *PROFILE_FIELDS):
        if _is_blank(winner.values[name]) and not _is_blank(loser.values[name]):
            winner.values[name] = loser.values[name]
    winner.values["attributes"] = {**loser.values["attributes"], **winner.values["attributes"]}
    loser.forward = winner


def _apply(entity: _Entity, data: ContactInput, *, through_alias: frozenset[str]) -> None:
    """`through_alias`: the identifier kinds by which the input found `entity` only through
    an alias (an address of a contact merged into it); those name it, they do not replace
    its own address."""
    values = entity.values
    for name in IDENTIFIER_FIELDS:
        given = getattr(data, name)
        if given is None or (name in through_alias and values[name]):
            continue
        current = values[name]
        if name == "email" and given and current and email_key(given) == email_key(current):
            continue  # the same address in another case: keep the stored spelling
        values[name] = given or None
    for name in PROFILE_FIELDS:
        given = getattr(data, name)
        if given is not None:
            values[name] = given
    if data.attributes is not None:
        merged = dict(values["attributes"])
        for key, value in data.attributes.items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        values["attributes"] = merged


def _keys_of(values: Mapping[str, Any]) -> list[IdentityKey]:
    keys: list[IdentityKey] = []
    if values["external_id"]:
        keys.append(("external_id", values["external_id"]))
    if values["email"]:
        keys.append(("email", email_key(values["email"])))
    if values["phone"]:
        keys.append(("phone", values["phone"]))
    return keys


@dataclass
class _Plan:
    entity_of: list[_Entity]
    creator_of: list[_Entity | None]
    changed: list[bool]
    merges: list[tuple[int, int]]  # (survivor id, duplicate id) of existing contacts


def _entities_index(inputs: Sequence[ContactInput]) -> dict[IdentityKey, _Entity]:
    """Every live contact the inputs name, loaded once, by each identity key."""
    all_keys = [key for data in inputs for key in data.identity_keys()]
    found = contacts_by_identifiers(
        external_ids=sorted({v for k, v in all_keys if k == "external_id"}),
        email_keys=sorted({v for k, v in all_keys if k == "email"}),
        phones=sorted({v for k, v in all_keys if k == "phone"}),
    )
    entities: dict[int, _Entity] = {}
    for chunk in chunks(sorted(set(found.values())), _CHUNK):
        for row in Contact.objects.filter(pk__in=chunk, is_erased=False).values(
            "id", *_STORED_FIELDS
        ):
            contact_id = row.pop("id")
            entities[contact_id] = _Entity(contact_id, row)
    return {
        key: entities[contact_id] for key, contact_id in found.items() if contact_id in entities
    }


def _adopt(entity: _Entity, existing: _Entity) -> None:
    """A contact first seen in this batch has no rows yet: the existing one carries on, with
    the new one's values taking precedence."""
    snapshot = dict(entity.values)
    entity.values = dict(existing.values)
    entity.contact_id, entity.original = existing.contact_id, existing.original
    for name in (*IDENTIFIER_FIELDS, *PROFILE_FIELDS):
        if not _is_blank(snapshot[name]):
            entity.values[name] = snapshot[name]
    entity.values["attributes"] = {**existing.values["attributes"], **snapshot["attributes"]}
    existing.forward = entity


def _join(matched: list[_Entity], plan: _Plan) -> _Entity:
    """One entity for an input that names several: existing contacts are merged (planned),
    one new in this batch adopts an existing one, two new ones fold."""
    entity = matched[0]
    for other in matched[1:]:
        if entity.contact_id is not None and other.contact_id is not None:
            plan.merges.append((entity.contact_id, other.contact_id))
            _fold(winner=entity, loser=other)
        elif entity.contact_id is None and other.contact_id is not None:
            _adopt(entity, other)
        else:
            _fold(winner=entity, loser=other)
    return entity


def _plan(inputs: Sequence[ContactInput]) -> _Plan:
    """Apply the inputs in order to an in-memory picture of the contacts they name."""
    index = _entities_index(inputs)
    plan = _Plan(entity_of=[], creator_of=[], changed=[], merges=[])
    for data in inputs:
        matched: list[_Entity] = []
        through_alias: set[str] = set()
        for key in data.identity_keys():
            hit = index.get(key)
            if hit is not None and (entity := hit.resolve()) not in matched:
                matched.append(entity)
            if hit is not None and key not in _keys_of(hit.resolve().values):
                through_alias.add(key[0])
        creator: _Entity | None = None
        if matched:
            entity = _join(matched, plan)
        else:
            entity = creator = _Entity(None, _empty_values())
        before = dict(entity.values)
        old_keys = _keys_of(before)
        _apply(entity, data, through_alias=frozenset(through_alias))
        for key in old_keys:
            if index.get(key) is entity:
                del index[key]
        for key in _keys_of(entity.values):
            index[key] = entity
        plan.entity_of.append(entity)
        plan.creator_of.append(creator)
        plan.changed.append(len(matched) != 1 or entity.values != before)
    return plan


def _contact_merge(*, survivor_id: int, duplicate_id: int) -> None:
    # Imported here: the merge service lives beside this one and imports contacts in turn.
    from crm.services.merge import contact_merge

    pair = Contact.objects.in_bulk([survivor_id, duplicate_id])
    if survivor_id in pair and duplicate_id in pair:
        contact_merge(survivor=pair[survivor_id], duplicate=pair[duplicate_id], merged_by="ingest")


def _write(plan: _Plan) -> None:
    final: dict[int, _Entity] = {id(e.resolve()): e.resolve() for e in plan.entity_of}
    now = timezone.now()
    updates: list[Contact] = []
    update_fields: set[str] = set()
    for entity in final.values():
        if entity.contact_id is None or entity.original is None:
            continue
        diff = [name for name in _STORED_FIELDS if entity.values[name] != entity.original[name]]
        if not diff:
            continue
        row = Contact(pk=entity.contact_id, updated_at=now)
        for name in diff:
            setattr(row, name, entity.values[name])
        if "email" in diff:
            row.email_key = email_key(row.email) if row.email else None
            update_fields.add("email_key")
        update_fields.update(diff)
        updates.append(row)
    if updates:
        # Before the inserts: a new contact may take an address an existing one gave up.
        Contact.objects.bulk_update(
            updates, fields=sorted({*update_fields, "updated_at"}), batch_size=_CHUNK
        )

    new = [entity for entity in final.values() if entity.contact_id is None]
    if new:
        rows = [
            Contact(
                **entity.values,
                email_key=email_key(entity.values["email"]) if entity.values["email"] else None,
                created_at=now,
            )
            for entity in new
        ]
        Contact.objects.bulk_create(rows, batch_size=_CHUNK)
        for entity, row in zip(new, rows, strict=True):
            entity.contact_id = row.pk


def _record_consent(
    inputs: Sequence[ContactInput],
    plan: _Plan,
    *,
    source: str,
    consent_proof: dict[str, Any] | None,
    ip_address: str | None,
    user_agent: str,
) -> list[list[ConsentOutcome]]:
    """Append the inputs' consent entries that change something; returns each input's
    outcomes. A grant is refused for a suppressed or erased address, and, from a source the
    business controls, when the person withdrew consent themselves (consent precedence,
    crm.services.consent.consent_changes_decide); withdrawals are always recorded."""
    outcomes: list[list[ConsentOutcome]] = [[] for _ in inputs]
    wanted = [i for i, data in enumerate(inputs) if data.consent]
    if not wanted:
        return outcomes
    suppressed = _suppressed_hashes([plan.entity_of[i].resolve().values for i in wanted])
    changes: list[ConsentChange] = []
    owners: list[tuple[int, ConsentInput]] = []
    for i in wanted:
        entity = plan.entity_of[i].resolve()
        assert entity.contact_id is not None
        for entry in inputs[i].consent:
            changes.append(
                ConsentChange(
                    contact_id=entity.contact_id,
                    channel=entry.channel,
                    purpose=entry.purpose,
                    status=entry.status,
                    blocked=_suppression_of(entity.values, entry.channel, suppressed),
                )
            )
            owners.append((i, entry))
    decided = consent_changes_decide(changes, source=source)
    records = []
    occurred_at = timezone.now()
    for change, (i, entry), outcome in zip(changes, owners, decided, strict=True):
        outcomes[i].append(outcome)
        if outcome.status != "recorded":
            continue
        records.append(
            build_consent_record(
                contact_id=change.contact_id,
                channel=entry.channel,
                purpose=entry.purpose,
                status=entry.status,
                source=source,
                text=entry.text,
                text_version=entry.text_version,
                ip_address=ip_address,
                user_agent=user_agent,
                proof=consent_proof,
                occurred_at=occurred_at,
            )
        )
        plan.changed[i] = True
    consent_record_bulk(records)
    return outcomes


def _address_of(values: Mapping[str, Any], channel: str) -> str | None:
    address = values.get("email") if channel == Channel.EMAIL else values.get("phone")
    return str(address) if address else None


def _suppressed_hashes(entities: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], str]:
    """{(channel, address hash): suppression reason} of every suppressed address among
    these, in one query."""
    wanted = {
        (channel, address_hash(channel, address))
        for values in entities
        for channel in (Channel.EMAIL, Channel.SMS)
        if (address := _address_of(values, channel))
    }
    if not wanted:
        return {}
    found = Suppression.objects.filter(
        address_hash__in=[digest for _, digest in wanted]
    ).values_list("channel", "address_hash", "reason")
    return {(ch, digest): reason for ch, digest, reason in found if (ch, digest) in wanted}


def _suppression_of(
    values: Mapping[str, Any], channel: str, suppressed: Mapping[tuple[str, str], str]
) -> str:
    """ "erased" or "suppressed" when a grant must not reach the contact's address on the
    channel (a suppressed address is never let back into marketing, whoever asks), else ""."""
    address = _address_of(values, channel)
    if address is None:
        return ""
    reason = suppressed.get((channel, address_hash(channel, address)))
    if reason is None:
        return ""
    return ERASED if reason == Suppression.Reason.ERASED else SUPPRESSED


def _upsert_once(
    inputs: Sequence[ContactInput],
    *,
    source: str,
    consent_proof: dict[str, Any] | None,
    ip_address: str | None,
    user_agent: str,
) -> list[UpsertResult]:
    merged_inputs: set[int] = set()
    for _ in range(_MAX_PASSES):
        plan = _plan(inputs)
        if not plan.merges:
            break
        # Merging moves rows the picture above cannot foresee: merge, then look again.
        merged_inputs.update(i for i, changed in enumerate(plan.changed) if changed)
        survivor_of: dict[int, int] = {}
        for survivor_id, duplicate_id in plan.merges:
            while survivor_id in survivor_of:
                survivor_id = survivor_of[survivor_id]
            if survivor_id != duplicate_id:
                _contact_merge(survivor_id=survivor_id, duplicate_id=duplicate_id)
                survivor_of[duplicate_id] = survivor_id
    else:
        raise RuntimeError("contacts kept needing merges; giving up on this batch")
    _write(plan)
    consent = _record_consent(
        inputs,
        plan,
        source=source,
        consent_proof=consent_proof,
        ip_address=ip_address,
        user_agent=user_agent,
    )
    results = []
    for i, entity in enumerate(plan.entity_of):
        final = entity.resolve()
        assert final.contact_id is not None
        creator = plan.creator_of[i]
        created = creator is not None and creator is final and final.original is None
        results.append(
            UpsertResult(
                contact_id=final.contact_id,
                created=created,
                changed=created or plan.changed[i] or i in merged_inputs,
                consent=consent[i],
            )
        )
    return results


def contacts_upsert(
    inputs: Sequence[ContactInput],
    *,
    source: str,
    consent_proof: dict[str, Any] | None = None,
    ip_address: str | None = None,
    user_agent: str = "",
) -> list[UpsertResult]:
    """Create or update a batch of contacts, one result per input, in input order.

    Each input is identified by external_id, then email, then phone (aliases of merged
    contacts included). When one input's identifiers name two existing contacts they are
    merged (the one found by the highest-priority identifier survives). Inputs naming the
    same person end on one contact. `changed` is False when nothing differed, so a replay
    writes nothing. Consent entries are appended to the ledger with `source` only when they
    differ from the current status; each result's `consent` says what became of each entry
    (a grant the person withdrew themselves, or to a suppressed or erased address, is
    refused). Editing a contact is not activity: last_activity_at is
    never touched here.
    """
    if not inputs:
        return []
    attempts = 3
    for attempt in range(attempts):
        try:
            with transaction.atomic():
                return _upsert_once(
                    inputs,
                    source=source,
                    consent_proof=consent_proof,
                    ip_address=ip_address,
                    user_agent=user_agent,
                )
        except IntegrityError:
            # Another request created one of these contacts since we looked; look again.
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")
