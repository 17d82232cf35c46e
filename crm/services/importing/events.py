"""Event rows: deduplicated by id (or by content when a row has none), ingested in batches."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

from django.utils import timezone

from crm.models import ImportRun
from crm.services.event_input import EventInput, event_input_parse
from crm.services.events import events_announce_received, events_ingest
from crm.services.importing.base import SOURCE, Importer
from crm.services.importing.reading import Record
from crm.services.importing.report import Counts, Report

logger = logging.getLogger(__name__)


@dataclass
class _PendingEvent:
    record: Record
    event_input: EventInput


def _derived_event_id(event: EventInput) -> str:
    """A row without an id gets one from its content, so that importing the file again is
    harmless; two identical rows are one event."""
    canonical = json.dumps(
        [
            event.type,
            event.occurred_at.isoformat(),
            sorted(event.contact.identity_keys()),
            event.properties,
            str(event.value),
            event.currency,
        ],
        sort_keys=True,
        default=str,
    )
    return "csv-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


class EventImporter(Importer):
    kind = ImportRun.Kind.EVENTS

    def __init__(self, *, run: ImportRun, report: Report, counts: Counts) -> None:
        super().__init__(run=run, report=report, counts=counts)
        self.started = timezone.now()
        self.pending: list[_PendingEvent] = []
        self.by_id: dict[str, _PendingEvent] = {}
        self.rows_in_batch = 0

    def pending_rows(self) -> int:
        return self.rows_in_batch

    def add_row(self, record: Record, values: dict[int, str]) -> None:
        self.rows_in_batch += 1
        data: dict[str, Any] = {}
        contact: dict[str, str] = {}
        properties: dict[str, str] = {}
        for column in self.columns:
            value = values.get(column.index, "")
            if not value:
                continue
            if column.role == "field":
                data[column.name] = value
            elif column.role == "contact":
                contact[column.name] = value
            elif column.role == "property":
                properties[column.name] = value
        data["contact"] = contact
        data["properties"] = properties
        event_input, errors = event_input_parse(data)
        if errors or event_input is None:
            self.reject_errors(record, values, errors)
            return
        if not event_input.client_id:
            event_input.client_id = _derived_event_id(event_input)
        earlier = self.by_id.get(event_input.client_id)
        if earlier is not None:
            self.counts.unchanged += 1
            self.note(
                record,
                column=self.header_of("field", "id") if "id" in data else "",
                value=data.get("id", ""),
                reason=f"duplicate of row {earlier.record.row}: skipped",
                outcome="duplicate",
            )
            return
        pending = _PendingEvent(record, event_input)
        self.pending.append(pending)
        self.by_id[event_input.client_id] = pending

    def finish(self) -> None:
        # Rules and segments hear of the imported events once the whole file is in: a
        # contact whose old events came in an early batch and recent ones in a later batch
        # must not look dormant to an evaluation that ran in between.
        events_announce_received(source=SOURCE, since=self.started)

    def flush(self) -> None:
        pending, self.pending, self.by_id = self.pending, [], {}
        self.rows_in_batch = 0
        if not pending:
            return
        statuses: list[str] = []
        try:
            results = self.in_transaction(
                lambda: events_ingest(
                    [p.event_input for p in pending], source=SOURCE, announce=False
                )
            )
            statuses = [result.status for result in results]
        except Exception:
            logger.warning(
                "Import run %s: a batch failed, saving it row by row",
                self.import_run.pk,
                exc_info=True,
            )
            statuses = []
            for item in pending:
                try:
                    [result] = self.in_transaction(
                        partial(events_ingest, [item.event_input], source=SOURCE, announce=False)
                    )
                    statuses.append(result.status)
                except Exception as exc:
                    self.reject(item.record, column="", value="", reason=f"not saved: {exc}")
                    statuses.append("")
        for status in statuses:
            if status == "accepted":
                self.counts.created += 1
            elif status == "duplicate":
                self.counts.unchanged += 1
