"""Creating and updating contacts from the outside world (API, CSV import), in batches.

`contact_input_parse` turns one untrusted mapping into a validated `ContactInput` or a list of
`FieldError`s; `contacts_upsert` writes a batch of them with a handful of queries, whatever the
batch size: one identity lookup, one load, one bulk insert, one bulk update, one consent read,
one read of the person's own withdrawals (consent precedence) and one consent insert. A batch
behaves as if its inputs were applied one after another.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from core.batching import chunks
from crm.jsonbody import json_value_problems
from crm.models import MARKETING, Channel, ConsentRecord, Contact, Suppression
from crm.normalise import (
    address_hash,
    email_key,
    normalise_country,
    normalise_email,
    normalise_locale,
    normalise_name,
    normalise_phone,
    validate_timezone,
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
from crm.services.errors import FieldError

# Priority order: a contact is identified by the first of these that matches.
IDENTIFIER_FIELDS = ("external_id", "email", "phone")
PROFILE_FIELDS = ("first_name", "last_name", "timezone", "locale", "country")
CONTACT_FIELDS = (*IDENTIFIER_FIELDS, *PROFILE_FIELDS, "attributes", "consent")
CONSENT_FIELDS = ("channel", "purpose", "status", "text", "text_version")

# (kind, value) as ContactAlias stores it: email values are email keys (lowercased).
IdentityKey = tuple[str, str]

_CHUNK = 500
_MAX_PASSES = 5


@dataclass(frozen=True)
class ConsentInput:
    channel: str  # "email" or "sms"
    status: str  # "granted" or "withdrawn"
    purpose: str = MARKETING
    text: str = ""
    text_version: str = ""


@dataclass
class ContactInput:
    """A normalised, validated contact. None means "not given, leave as is"; "" means
    "clear it". Attributes are merged into the existing ones (a key set to None removes it)."""

    external_id: str | None = None
    email: str | None = None  # normalised with crm.normalise.normalise_email
    phone: str | None = None  # E.164
    first_name: str | None = None
    last_name: str | None = None
    timezone: str | None = None
    locale: str | None = None
    country: str | None = None
    attributes: dict[str, Any] | None = None
    consent: list[ConsentInput] = field(default_factory=list)

    def identity_keys(self) -> list[IdentityKey]:
        """The (kind, value) keys that identify this contact, highest priority first."""
        keys: list[IdentityKey] = []
        if self.external_id:
            keys.append(("external_id", self.external_id))
        if self.email:
            keys.append(("email", email_key(self.email)))
        if self.phone:
            keys.append(("phone", self.phone))
        return keys


@dataclass
class UpsertResult:
    contact_id: int
    created: bool
    changed: bool
    # One per consent entry of the input, in order: recorded, unchanged or refused (why).
    consent: list[ConsentOutcome] = field(default_factory=list)


# --- Parsing ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _phone_cached(raw: str, region: str) -> str:
    return normalise_phone(raw, region)


@functools.lru_cache(maxsize=65536)
def _email_cached(raw: str) -> str:
    return normalise_email(raw)


def _message(exc: ValidationError) -> str:
    return "; ".join(str(m) for m in exc.messages)


def _text(
    data: Mapping[str, Any], key: str, errors: list[FieldError], name: str, max_length: int
) -> str | None:
    """A string field: None when absent or null; an error when not a string or too long."""
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        errors.append(FieldError(name, f"must be a string, got {value!r}"))
        return None
    value = value.strip()
    if len(value) > max_length:
        errors.append(FieldError(name, f"{value[:40]!r}… is longer than {max_length} characters"))
        return None
    return value


def contact_input_parse(
    data: Mapping[str, Any], *, prefix: str = "", identifiers_only: bool = False
) -> tuple[ContactInput | None, list[FieldError]]:
    """Validate and normalise one contact given as a mapping (a JSON object, a CSV row).

    Keys: external_id, email, phone, first_name, last_name, timezone, locale, country,
    attributes (an object), consent (a list of {channel, purpose, status, text, text_version}).
    Absent or null = leave as is, "" = clear. At least one of external_id, email or phone must
    be given. Unknown keys are errors, so that nothing sent is silently dropped. With
    `identifiers_only` only external_id, email and phone are accepted (an event's contact).
    Field names in errors are prefixed with `prefix`, e.g. "contact." gives "contact.email".
    """
    errors: list[FieldError] = []
    where = prefix.rstrip(".") or "contact"
    if not isinstance(data, Mapping):
        return None, [FieldError(where, f"must be an object, got {data!r}")]
    # NUL, lone surrogates and numbers no column holds (from a CSV cell or JSON alike).
    if problems := json_value_problems(data, path=prefix.rstrip(".")):
        return None, problems
    allowed = IDENTIFIER_FIELDS if identifiers_only else CONTACT_FIELDS
    for key in data:
        if key not in allowed:
            hint = (
                "only external_id, email and phone identify the contact of an event"
                if identifiers_only
                else f"known fields: {', '.join(CONTACT_FIELDS)}; custom data goes in attributes"
            )
            errors.append(FieldError(f"{prefix}{key}", f"{key!r} is not a contact field ({hint})"))

    result = ContactInput()

    raw_external_id = data.get("external_id")
    if isinstance(raw_external_id, int) and not isinstance(raw_external_id, bool):
        result.external_id = str(raw_external_id)
    else:
        result.external_id = _text(data, "external_id", errors, f"{prefix}external_id", 255)

    raw_email = _text(data, "email", errors, f"{prefix}email", 254)
    if raw_email:
        try:
            result.email = _email_cached(raw_email)
        except ValidationError as exc:
            errors.append(FieldError(f"{prefix}email", _message(exc)))
    elif raw_email == "":
        result.email = ""

    raw_phone = _text(data, "phone", errors, f"{prefix}phone", 40)
    if raw_phone:
        try:
            result.phone = _phone_cached(raw_phone, settings.PHONE_DEFAULT_REGION)
        except ValidationError as exc:
            errors.append(FieldError(f"{prefix}phone", _message(exc)))
    elif raw_phone == "":
        result.phone = ""

    if not any(data.get(key) not in (None, "") for key in IDENTIFIER_FIELDS):
        errors.append(
            FieldError(where, "needs one of external_id, email or phone to identify the contact")
        )
    if identifiers_only:
        return (None, errors) if errors else (result, [])

    for name in ("first_name", "last_name"):
        value = _text(data, name, errors, f"{prefix}{name}", 150)
        if value is not None:
            setattr(result, name, normalise_name(value))
    for name, check, max_length in (
        ("timezone", validate_timezone, 64),
        ("locale", normalise_locale, 35),
        ("country", normalise_country, 2),
    ):
        value = _text(data, name, errors, f"{prefix}{name}", 64)
        if value is None:
            continue
        try:
            value = check(value)
        except ValidationError as exc:
            errors.append(FieldError(f"{prefix}{name}", _message(exc)))
            continue
        if len(value) > max_length:
            errors.append(FieldError(f"{prefix}{name}", f"{value!r} is too long"))
            continue
        setattr(result, name, value)

    attributes = data.get("attributes")
    if attributes is not None:
        if not isinstance(attributes, Mapping):
            errors.append(
                FieldError(f"{prefix}attributes", f"must be an object, got {attributes!r}")
            )
        elif bad := [key for key in attributes if not isinstance(key, str) or not key.strip()]:
            errors.append(FieldError(f"{prefix}attributes", f"keys must be names, got {bad!r}"))
        else:
            result.attributes = dict(attributes)

    consent = data.get("consent")
    if consent is not None:
        if not isinstance(consent, list):
            errors.append(FieldError(f"{prefix}consent", f"must be a list, got {consent!r}"))
        else:
            for position, entry in enumerate(consent):
                parsed, entry_errors = _consent_parse(entry, prefix=f"{prefix}consent[{position}].")
                errors.extend(entry_errors)
                if parsed is not None:
                    result.consent.append(parsed)

    return (None, errors) if errors else (result, [])


def _consent_parse(data: Any, *, prefix: str) -> tuple[ConsentInput | None, list[FieldError]]:
    if not isinstance(data, Mapping):
        return None, [FieldError(prefix.rstrip("."), f"must be an object, got {data!r}")]
    known = ", ".join(CONSENT_FIELDS)
    errors = [
        FieldError(f"{prefix}{key}", f"{key!r} is not a consent field ({known})")
        for key in data
        if key not in CONSENT_FIELDS
    ]
    channel = _text(data, "channel", errors, f"{prefix}channel", 10)
    if channel not in Channel.values:
        errors.append(
            FieldError(f"{prefix}channel", f"{channel!r} is not a channel (email or sms)")
        )
    status = _text(data, "status", errors, f"{prefix}status", 10)
    if status not in ConsentRecord.Status.values:
        errors.append(
            FieldError(f"{prefix}status", f"{status!r} is not a status (granted or withdrawn)")
        )
    purpose = _text(data, "purpose", errors, f"{prefix}purpose", 64) or MARKETING
    text = _text(data, "text", errors, f"{prefix}text", 10_000) or ""
    text_version = _text(data, "text_version", errors, f"{prefix}text_version", 64) or ""
    if errors or channel is None or status is None:
        return None, errors
    return ConsentInput(
        channel=channel, status=status, purpose=purpose, text=text, text_version=text_version
    ), []


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


def _apply(entity: _Entity, data: ContactInput) -> None:
    values = entity.values
    for name in IDENTIFIER_FIELDS:
        given = getattr(data, name)
        if given is None:
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


def _plan(inputs: Sequence[ContactInput]) -> _Plan:
    """Apply the inputs in order to an in-memory picture of the contacts they name."""
    all_keys = [key for data in inputs for key in data.identity_keys()]
    found = contacts_by_identifiers(
        external_ids=sorted({v for k, v in all_keys if k == "external_id"}),
        email_keys=sorted({v for k, v in all_keys if k == "email"}),
        phones=sorted({v for k, v in all_keys if k == "phone"}),
    )
    entities: dict[int, _Entity] = {}
    ids = sorted(set(found.values()))
    for chunk in chunks(ids, _CHUNK):
        for row in Contact.objects.filter(pk__in=chunk, is_erased=False).values(
            "id", *_STORED_FIELDS
        ):
            contact_id = row.pop("id")
            entities[contact_id] = _Entity(contact_id, row)
    index: dict[IdentityKey, _Entity] = {
        key: entities[contact_id] for key, contact_id in found.items() if contact_id in entities
    }

    plan = _Plan(entity_of=[], creator_of=[], changed=[], merges=[])
    for data in inputs:
        matched: list[_Entity] = []
        for key in data.identity_keys():
            hit = index.get(key)
            if hit is not None and (entity := hit.resolve()) not in matched:
                matched.append(entity)
        changed = False
        creator: _Entity | None = None
        if not matched:
            entity = creator = _Entity(None, _empty_values())
            changed = True
        else:
            entity = matched[0]
            for other in matched[1:]:
                changed = True
                if entity.contact_id is not None and other.contact_id is not None:
                    plan.merges.append((entity.contact_id, other.contact_id))
                    _fold(winner=entity, loser=other)
                elif entity.contact_id is None and other.contact_id is not None:
                    # A contact first seen in this batch has no rows yet: the existing one
                    # carries on, with the new one's values taking precedence.
                    snapshot = dict(entity.values)
                    entity.values = dict(other.values)
                    entity.contact_id, entity.original = other.contact_id, other.original
                    for name in (*IDENTIFIER_FIELDS, *PROFILE_FIELDS):
                        if not _is_blank(snapshot[name]):
                            entity.values[name] = snapshot[name]
                    entity.values["attributes"] = {
                        **other.values["attributes"],
                        **snapshot["attributes"],
                    }
                    other.forward = entity
                else:
                    _fold(winner=entity, loser=other)
        before = dict(entity.values)
        old_keys = _keys_of(before)
        _apply(entity, data)
        changed = changed or entity.values != before
        for key in old_keys:
            if index.get(key) is entity:
                del index[key]
        for key in _keys_of(entity.values):
            index[key] = entity
        plan.entity_of.append(entity)
        plan.creator_of.append(creator)
        plan.changed.append(changed)
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
