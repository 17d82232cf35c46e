"""Contact rows: merged per person within a batch, upserted, consent appended with the file
and row as proof, never granted to a suppressed address nor over a withdrawal the person made
themselves (consent precedence, docs/consent.md)."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from crm.models import MARKETING, Channel, ConsentRecord, ImportRun, Suppression
from crm.normalise import address_hash
from crm.services.consent import (
    REFUSAL_EXPLANATIONS,
    SUPPRESSED,
    ConsentChange,
    build_consent_record,
    consent_changes_decide,
    consent_record_bulk,
)
from crm.services.contact_input import ContactInput, contact_input_parse
from crm.services.contacts import contacts_upsert
from crm.services.errors import FieldError
from crm.services.importing.base import SOURCE, Importer
from crm.services.importing.reading import CONSENT_EXTRAS, Record
from crm.services.importing.report import Counts, Report

logger = logging.getLogger(__name__)

CONSENT_VALUES = {
    "granted": ConsentRecord.Status.GRANTED,
    "yes": ConsentRecord.Status.GRANTED,
    "true": ConsentRecord.Status.GRANTED,
    "1": ConsentRecord.Status.GRANTED,
    "withdrawn": ConsentRecord.Status.WITHDRAWN,
    "no": ConsentRecord.Status.WITHDRAWN,
    "false": ConsentRecord.Status.WITHDRAWN,
    "0": ConsentRecord.Status.WITHDRAWN,
}


@dataclass
class _Consent:
    channel: str
    status: str
    purpose: str
    text: str
    text_version: str
    record: Record


@dataclass
class _PendingContact:
    """One contact of the batch: the first row that named it, and rows after it in the same
    batch that name it again, merged in (later non-empty values win). One input per person
    keeps a rerun quiet: rows applied one by one would flip a value back and forth."""

    record: Record
    data: dict[str, Any]
    contact_input: ContactInput
    consents: dict[tuple[str, str], _Consent]
    extra_rows: list[tuple[Record, bool]] = field(default_factory=list)  # (record, changed)
    notes: list[dict[str, str]] = field(default_factory=list)  # for the report, once saved


def _identity(contact_input: ContactInput) -> dict[str, str]:
    return dict(contact_input.identity_keys())


def _canonical(contact_input: ContactInput) -> str:
    """Equal for rows that differ only in the case of the email."""
    values = {**vars(contact_input), **_identity(contact_input)}
    return json.dumps(values, sort_keys=True, default=str)


def _consent_signature(consents: Mapping[tuple[str, str], _Consent]) -> list[tuple[str, ...]]:
    return sorted((*key, c.status, c.text, c.text_version) for key, c in consents.items())


class ContactImporter(Importer):
    kind = ImportRun.Kind.CONTACTS

    def __init__(self, *, run: ImportRun, report: Report, counts: Counts) -> None:
        super().__init__(run=run, report=report, counts=counts)
        self.pending: list[_PendingContact] = []
        self.by_key: dict[tuple[str, str], _PendingContact] = {}
        self.rows_in_batch = 0

    def pending_rows(self) -> int:
        return self.rows_in_batch

    def add_row(self, record: Record, values: dict[int, str]) -> None:
        self.rows_in_batch += 1
        data, consents, errors = self._row_data(record, values)
        contact_input, parse_errors = contact_input_parse(data)
        errors += parse_errors
        if errors or contact_input is None:
            self.reject_errors(record, values, errors)
            return
        keys = contact_input.identity_keys()
        matches: list[_PendingContact] = []
        for key in keys:
            hit = self.by_key.get(key)
            if hit is not None and hit not in matches:
                matches.append(hit)
        if not matches:
            pending = _PendingContact(record, data, contact_input, consents)
            self.pending.append(pending)
            self.by_key.update(dict.fromkeys(keys, pending))
        elif len(matches) > 1:
            rows = ", ".join(str(m.record.row) for m in matches)
            self.reject(
                record,
                column="",
                value="",
                reason=f"names the contacts of rows {rows} at once (an email, phone or "
                "external_id of different people): fix the row",
            )
        else:
            self._merge(matches[0], record, values, data, contact_input, consents)

    def _merge(
        self,
        pending: _PendingContact,
        record: Record,
        values: Mapping[int, str],
        data: dict[str, Any],
        contact_input: ContactInput,
        consents: dict[tuple[str, str], _Consent],
    ) -> None:
        earlier = _identity(pending.contact_input)
        for name, value in _identity(contact_input).items():
            if earlier.get(name, value) != value:
                self.reject(
                    record,
                    column=self.header_of("field", name),
                    value=values.get(self.index_of("field", name), ""),
                    reason=f"row {pending.record.row} gives the same contact the {name} "
                    f"{pending.data.get(name)!r}; one person cannot have both: fix one row",
                )
                return
        merged = dict(pending.data)
        for name, value in data.items():
            if name == "attributes":
                merged["attributes"] = {**merged.get("attributes", {}), **value}
            elif name not in earlier:  # identifiers keep the first row's spelling
                merged[name] = value
        merged_input, errors = contact_input_parse(merged)
        if merged_input is None:  # cannot happen: both halves parsed
            self.reject_errors(record, values, errors)
            return
        new_consents = {**pending.consents, **consents}
        changed = _canonical(merged_input) != _canonical(pending.contact_input) or (
            _consent_signature(new_consents) != _consent_signature(pending.consents)
        )
        if changed:
            pending.data, pending.contact_input = merged, merged_input
            pending.consents = new_consents
            self.by_key.update(dict.fromkeys(merged_input.identity_keys(), pending))
            reason = (
                f"same contact as row {pending.record.row}: merged into it, values from "
                "this row win where both rows have one"
            )
        else:
            reason = f"duplicate of row {pending.record.row}: nothing new, skipped"
        pending.extra_rows.append((record, changed))
        self.note(
            record,
            column="",
            value="",
            reason=reason,
            outcome="imported" if changed else "duplicate",
        )

    def _row_data(
        self, record: Record, values: Mapping[int, str]
    ) -> tuple[dict[str, Any], dict[tuple[str, str], _Consent], list[FieldError]]:
        data: dict[str, Any] = {}
        attributes: dict[str, str] = {}
        statuses: dict[str, str] = {}
        extras: dict[str, str] = {}
        errors: list[FieldError] = []
        for column in self.columns:
            value = values.get(column.index, "")
            if not value:
                # A blank cell says nothing: it never erases what the contact already has.
                continue
            if column.role == "field":
                data[column.name] = value
            elif column.role == "attribute":
                attributes[column.name] = value
            elif column.role == "consent":
                status = CONSENT_VALUES.get(value.lower())
                if status is None:
                    errors.append(
                        FieldError(
                            f"consent_{column.name}",
                            f"{value!r} is not a consent answer: use granted, withdrawn, "
                            "yes, no, true, false, 1 or 0",
                        )
                    )
                else:
                    statuses[column.name] = status
            elif column.role in CONSENT_EXTRAS:
                extras[column.role] = value
        if attributes:
            data["attributes"] = attributes
        purpose = extras.get("consent_purpose", MARKETING)
        consents = {
            (channel, purpose): _Consent(
                channel=channel,
                status=status,
                purpose=purpose,
                text=extras.get("consent_text", ""),
                text_version=extras.get("consent_text_version", ""),
                record=record,
            )
            for channel, status in statuses.items()
        }
        return data, consents, errors

    def flush(self) -> None:
        pending, self.pending, self.by_key = self.pending, [], {}
        self.rows_in_batch = 0
        if not pending:
            return
        suppressed = self._suppressed(pending)
        try:
            outcomes = self.in_transaction(lambda: self._save(pending, suppressed))
        except Exception:
            # One bad row must not sink the batch: save row by row to find and report it.
            logger.warning(
                "Import run %s: a batch failed, saving it row by row",
                self.import_run.pk,
                exc_info=True,
            )
            outcomes = []
            for item in pending:
                try:
                    outcomes.extend(self.in_transaction(partial(self._save, [item], suppressed)))
                except Exception as exc:
                    logger.warning(
                        "Import run %s: row %s not saved", self.import_run.pk, item.record.row
                    )
                    self.reject(item.record, column="", value="", reason=f"not saved: {exc}")
                    for extra, _changed in item.extra_rows:
                        self.counts.rejected += 1
                        self.note(
                            extra,
                            column="",
                            value="",
                            reason=f"not saved, like row {item.record.row}",
                            outcome="rejected",
                        )
        for item, outcome in outcomes:
            self._count(item, outcome)
            for message in item.notes:
                if message["outcome"] == "consent refused":
                    self.counts.consents_refused += 1
                self.note(item.record, **message)

    def _suppressed(self, pending: Sequence[_PendingContact]) -> set[int]:
        """Positions in the batch of contacts whose email or phone is suppressed, with one
        query for the whole batch."""
        by_hash: dict[str, list[int]] = {}
        for position, item in enumerate(pending):
            if item.contact_input.email:
                key = address_hash(Channel.EMAIL, item.contact_input.email)
                by_hash.setdefault(key, []).append(position)
            if item.contact_input.phone:
                key = address_hash(Channel.SMS, item.contact_input.phone)
                by_hash.setdefault(key, []).append(position)
        if not by_hash:
            return set()
        found = Suppression.objects.filter(address_hash__in=list(by_hash)).values_list(
            "address_hash", flat=True
        )
        return {position for key in found for position in by_hash[key]}

    def _save(
        self, pending: Sequence[_PendingContact], suppressed: set[int]
    ) -> list[tuple[_PendingContact, str]]:
        """Upsert the batch, then append consent that differs from the current one, each
        entry with its own row as proof (the upsert service takes one proof per batch). A
        grant is refused, and the row's report line says why, when the row's email or phone
        is suppressed or when the person withdrew consent themselves (consent precedence:
        crm.services.consent.consent_changes_decide)."""
        results = contacts_upsert([item.contact_input for item in pending], source=SOURCE)
        changes: list[ConsentChange] = []
        owners: list[tuple[int, _Consent]] = []
        for position, (item, result) in enumerate(zip(pending, results, strict=True)):
            item.notes = []
            for (channel, purpose), consent in item.consents.items():
                changes.append(
                    ConsentChange(
                        contact_id=result.contact_id,
                        channel=channel,
                        purpose=purpose,
                        status=consent.status,
                        blocked=SUPPRESSED if position in suppressed else "",
                    )
                )
                owners.append((position, consent))
        decided = consent_changes_decide(changes, source=SOURCE)
        records: list[ConsentRecord] = []
        appended: set[int] = set()
        for change, (position, consent), outcome in zip(changes, owners, decided, strict=True):
            if outcome.status == "refused":
                pending[position].notes.append(
                    {
                        "column": self.header_of("consent", change.channel),
                        "value": "granted",
                        "reason": f"{outcome.reason}: consent not recorded "
                        f"({REFUSAL_EXPLANATIONS[outcome.reason]})",
                        "outcome": "consent refused",
                    }
                )
                continue
            if outcome.status == "unchanged":
                continue
            records.append(
                build_consent_record(
                    contact_id=change.contact_id,
                    channel=change.channel,
                    status=change.status,
                    source=SOURCE,
                    purpose=change.purpose,
                    text=consent.text,
                    text_version=consent.text_version,
                    proof={
                        "file": self.filename,
                        "row": consent.record.row,
                        "import_run": self.import_run.pk,
                    },
                )
            )
            appended.add(position)
        outcomes: list[tuple[_PendingContact, str]] = []
        for position, (item, result) in enumerate(zip(pending, results, strict=True)):
            if result.created:
                outcomes.append((item, "created"))
            elif result.changed or position in appended:
                outcomes.append((item, "updated"))
            else:
                outcomes.append((item, "unchanged"))
        consent_record_bulk(records)
        return outcomes

    def _count(self, item: _PendingContact, outcome: str) -> None:
        setattr(self.counts, outcome, getattr(self.counts, outcome) + 1)
        for _record, changed in item.extra_rows:
            if changed and outcome != "unchanged":
                self.counts.updated += 1
            else:
                self.counts.unchanged += 1
