"""What contact and event imports share: header, rows into batches, one transaction per batch,
rejections with row and column."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TypeVar

from django.db import reset_queries, transaction

from crm.models import ConsentRecord, ImportRun
from crm.services.errors import FieldError
from crm.services.importing.reading import Column, ImportFileError, Record, columns_of
from crm.services.importing.report import Counts, Progress, Report

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

BATCH_SIZE = 500

SOURCE = ConsentRecord.Source.IMPORT

_LAST_PATH_PART = re.compile(r"(\.[^.\[]*|\[[^\]]*\])$")


class Importer:
    """Shared flow: header, then rows into batches, each batch saved in one transaction."""

    kind: str

    def __init__(self, *, run: ImportRun, report: Report, counts: Counts) -> None:
        self.import_run = run
        self.report = report
        self.counts = counts
        self.columns: list[Column] = []
        self.filename = run.filename

    def process(self, records: Iterator[Record], *, progress: Progress) -> None:
        header = self._header(records)
        self.columns, notes = columns_of(self.kind, header.fields)
        for header_name, note in notes:
            self.report.add(
                row=header.row,
                column=header_name,
                value=header_name,
                reason=note,
                outcome="file",
                line=header.line,
            )
        for record in records:
            values = self._values(record)
            if values is None:
                continue
            self.counts.read += 1
            self.add_row(record, values)
            if self.pending_rows() >= BATCH_SIZE:
                self.flush()
                self.report.flush()
                progress.batch_done(self.counts)
                # With DEBUG on, Django keeps the last 9,000 queries' SQL; bulk inserts of a
                # big file would hold hundreds of megabytes of it.
                reset_queries()
        self.flush()
        self.report.flush()
        self.finish()

    def finish(self) -> None:
        """After the last batch has committed."""

    def _header(self, records: Iterator[Record]) -> Record:
        for record in records:
            if record.unreadable:
                raise ImportFileError(f"The header row cannot be read: {record.unreadable}")
            if any(cell.strip() for cell in record.fields):
                return record
        raise ImportFileError("The file is empty: it needs a header row and data rows.")

    def _values(self, record: Record) -> dict[int, str] | None:
        """The row's trimmed cells by column index, or None for a blank line. A row that
        cannot be trusted (ragged, undecodable) is reported and counted as rejected."""
        if not any(cell.strip() for cell in record.fields) and not record.unreadable:
            return None
        for note in record.notes:
            self._note_decoding(record, note)
        problem = record.unreadable
        width = len(self.columns)
        # Columns without a header at the end (a trailing comma) may be missing from a row.
        needed = 1 + max(c.index for c in self.columns if c.role != "ignore")
        if not problem and len(record.fields) < needed:
            problem = (
                f"row has {len(record.fields)} fields but the header has {width}: "
                "a missing separator or an unquoted comma?"
            )
        elif not problem and any(cell.strip() for cell in record.fields[width:]):
            problem = (
                f"row has {len(record.fields)} fields but the header has {width}: "
                "a comma inside a value that is not quoted?"
            )
        if problem:
            self.counts.read += 1
            self.reject(record, column="", value=",".join(record.fields)[:200], reason=problem)
            return None
        headless = [c.index for c in self.columns if c.role == "ignore"]
        for index in headless:
            if index < len(record.fields) and (value := record.fields[index].strip()):
                self.note(
                    record,
                    column=f"column {index + 1}",
                    value=value,
                    reason="this column has no header, so its value was not imported",
                    outcome="warning",
                )
        return {
            column.index: record.fields[column.index].strip()
            for column in self.columns
            if column.role != "ignore"
        }

    def _note_decoding(self, record: Record, note: str) -> None:
        columns = [
            (c.header, record.fields[c.index])
            for c in self.columns
            if c.index < len(record.fields) and not record.fields[c.index].isascii()
        ] or [("", ",".join(record.fields)[:200])]
        for header, value in columns:
            self.report.add(
                row=record.row,
                column=header,
                value=value,
                reason=note,
                outcome="warning",
                line=record.line,
            )

    def reject(self, record: Record, *, column: str, value: str, reason: str) -> None:
        self.counts.rejected += 1
        self.report.add(
            row=record.row,
            column=column,
            value=value,
            reason=reason,
            outcome="rejected",
            line=record.line,
        )

    def reject_errors(
        self, record: Record, values: Mapping[int, str], errors: Iterable[FieldError]
    ) -> None:
        self.counts.rejected += 1
        for error in errors:
            column = self._column_of(error.field)
            value = values.get(column.index, "") if column else ""
            self.report.add(
                row=record.row,
                column=column.header if column else error.field,
                value=value,
                reason=error.message,
                outcome="rejected",
                line=record.line,
            )

    def _column_of(self, field_path: str) -> Column | None:
        """The file's column behind a service's field path such as 'email',
        'attributes.plan', 'contact.phone' or 'consent_email'; a path the file has no
        column for falls back to its parent ('attributes.plan.x' to 'attributes.plan')."""
        by_path: dict[str, Column] = {}
        prefixes = {"attribute": "attributes.", "property": "properties.", "contact": "contact."}
        for column in self.columns:
            if column.role == "consent":
                by_path.setdefault(f"consent_{column.name}", column)
            elif column.role in prefixes:
                by_path.setdefault(prefixes[column.role] + column.name, column)
                by_path.setdefault(prefixes[column.role].rstrip("."), column)
            elif column.role == "field":
                by_path.setdefault(column.name, column)
        path = field_path.strip()
        while path:
            if path in by_path:
                return by_path[path]
            parent = _LAST_PATH_PART.sub("", path)
            path = "" if parent == path else parent
        return None

    def note(self, record: Record, *, column: str, value: str, reason: str, outcome: str) -> None:
        self.report.add(
            row=record.row,
            column=column,
            value=value,
            reason=reason,
            outcome=outcome,
            line=record.line,
        )

    def index_of(self, role: str, name: str) -> int:
        for column in self.columns:
            if column.role == role and column.name == name:
                return column.index
        return -1

    def header_of(self, role: str, name: str) -> str:
        for column in self.columns:
            if column.role == role and column.name == name:
                return column.header
        return name

    def in_transaction(self, work: Callable[[], _T]) -> _T:
        """Run one batch in its own transaction. A receiver of a crm signal that fails after
        the commit (on_commit) does not make a saved batch look unsaved: the failure is
        logged and noted in the report, and the import goes on."""
        committed: list[bool] = []
        finished: list[_T] = []
        try:
            with transaction.atomic():
                transaction.on_commit(lambda: committed.append(True))
                finished.append(work())
        except Exception as exc:
            if not (finished and committed):
                raise
            logger.exception("Import run %s: a receiver failed after commit", self.import_run.pk)
            self.report.add(
                row=0,
                column="",
                value="",
                reason=f"rows were saved, but a receiver failed after the commit: {exc!r}",
                outcome="warning",
                line="",
            )
        return finished[0]

    def add_row(self, record: Record, values: dict[int, str]) -> None:
        raise NotImplementedError

    def pending_rows(self) -> int:
        raise NotImplementedError

    def flush(self) -> None:
        raise NotImplementedError
