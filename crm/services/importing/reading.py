"""Reading a CSV file safely: bytes decoded a line at a time (UTF-8, or Windows-1252 for a
line that is not), records with their spreadsheet row numbers, and the header mapped to what
each column feeds."""

from __future__ import annotations

import codecs
import csv
import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from crm.models import Channel, ImportRun

CONTACT_FIELDS = (
    "external_id",
    "email",
    "phone",
    "first_name",
    "last_name",
    "timezone",
    "locale",
    "country",
)

CONTACT_KEYS = ("email", "phone", "external_id")

EVENT_FIELDS = ("id", "type", "occurred_at", "value", "currency")

CONSENT_EXTRAS = ("consent_text", "consent_purpose", "consent_text_version")

_SPACES_OR_DASHES = re.compile(r"[\s\-]+")


class ImportFileError(Exception):
    """The file as a whole cannot be imported (missing column, unreadable encoding): nothing
    is imported and the message says why."""


@dataclass
class Record:
    row: int  # as a spreadsheet numbers it: the header is row 1, blank lines count
    line: int  # the physical line the record starts on
    fields: list[str]
    notes: list[str] = field(default_factory=list)  # decoding warnings for this record
    unreadable: str = ""  # why this record cannot be trusted, if it cannot


class _DecodedLines:
    """Decodes a binary file one line at a time: UTF-8 (a BOM is dropped); a line that is not
    valid UTF-8 is read as Windows-1252 (which covers Latin-1 text) and noted, so a file saved
    by an old spreadsheet keeps "José" intact while the UTF-8 lines beside it are untouched.
    Splitting on b"\\n" is safe in both encodings: neither uses that byte inside a character.
    A line that is neither is replaced and flagged, so its row is rejected, never guessed."""

    def __init__(self, binary: BinaryIO) -> None:
        self._binary = binary
        self.line_no = 0
        self.offset = 0
        self.notes: list[tuple[int, str]] = []
        self.unreadable: list[tuple[int, str]] = []

    def __iter__(self) -> Iterator[str]:
        for raw in self._binary:
            self.line_no += 1
            start = self.offset
            self.offset += len(raw)
            if self.line_no == 1:
                if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise ImportFileError(
                        "The file is UTF-16 text (Excel's 'Unicode Text'); save it as "
                        "'CSV UTF-8' and import that."
                    )
                if raw.startswith(codecs.BOM_UTF8):
                    raw = raw[len(codecs.BOM_UTF8) :]
                    start += len(codecs.BOM_UTF8)
            try:
                yield raw.decode("utf-8")
                continue
            except UnicodeDecodeError as exc:
                bad_offset = start + exc.start
            try:
                text = raw.decode("cp1252")
            except UnicodeDecodeError:
                self.unreadable.append(
                    (
                        self.line_no,
                        f"line {self.line_no} is neither UTF-8 nor Windows-1252 (byte "
                        f"{raw[bad_offset - start : bad_offset - start + 1]!r} at byte offset "
                        f"{bad_offset}); save the file as CSV UTF-8",
                    )
                )
                yield raw.decode("utf-8", errors="replace")
                continue
            self.notes.append(
                (
                    self.line_no,
                    f"not valid UTF-8 (first bad byte at offset {bad_offset}); "
                    "read as Windows-1252: check the spelling",
                )
            )
            yield text


def read_records(binary: BinaryIO) -> Iterator[Record]:
    decoder = _DecodedLines(binary)
    reader = csv.reader(decoder, skipinitialspace=True)
    row = 0
    last_line = 0
    while True:
        try:
            fields = next(reader)
            error = ""
        except StopIteration:
            return
        except csv.Error as exc:
            fields, error = [], f"unreadable CSV ({exc}; an unclosed quote?)"
        row += 1
        record = Record(row=row, line=last_line + 1, fields=fields, unreadable=error)
        last_line = reader.line_num
        while decoder.notes and decoder.notes[0][0] <= last_line:
            record.notes.append(decoder.notes.pop(0)[1])
        while decoder.unreadable and decoder.unreadable[0][0] <= last_line:
            record.unreadable = decoder.unreadable.pop(0)[1]
        yield record


def _header_key(raw: str) -> str:
    """How a header is matched: 'First Name', ' first-name ' and 'FIRST_NAME' are one."""
    return _SPACES_OR_DASHES.sub("_", raw.replace("\ufeff", "").strip().lower())


@dataclass(frozen=True)
class Column:
    index: int
    header: str  # as written in the file, trimmed
    role: str  # field, contact, attribute, property, consent, consent_text, ..., ignore
    name: str  # the API field, attribute, property or consent channel it feeds


def columns_of(kind: str, headers: list[str]) -> tuple[list[Column], list[tuple[str, str]]]:
    """Maps the header row to what each column feeds; returns the columns and notes about
    custom columns (column header, note). Raises ImportFileError naming a missing or
    repeated column."""
    columns: list[Column] = []
    notes: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    known = (
        CONTACT_FIELDS + CONSENT_EXTRAS + tuple(f"consent_{c}" for c in Channel.values)
        if kind == ImportRun.Kind.CONTACTS
        else EVENT_FIELDS + CONTACT_KEYS
    )
    for index, raw in enumerate(headers):
        header = raw.replace("\ufeff", "").strip()
        key = _header_key(raw)
        if not key:
            columns.append(Column(index, header, "ignore", ""))
            continue
        column = _column_for(kind, index, header, key)
        target = f"{column.role}:{column.name}"
        if target in seen:
            raise ImportFileError(
                f"Columns {seen[target]!r} and {header!r} both give {column.name!r}; "
                "keep one of them."
            )
        seen[target] = header
        columns.append(column)
        if column.role in ("attribute", "property") and key == column.name:
            what = "custom attribute" if column.role == "attribute" else "event property"
            note = f"not a standard column: imported as {what} {column.name!r}"
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.75)
            if close:
                note += f"; did you mean {close[0]!r}?"
            notes.append((header, note))
    roles = {c.name for c in columns if c.role in ("field", "contact")}
    missing = []
    if kind == ImportRun.Kind.EVENTS:
        missing = [name for name in ("type", "occurred_at") if name not in roles]
    if not roles.intersection(CONTACT_KEYS):
        missing.append("one of email, phone, external_id")
    if missing:
        found = ", ".join(repr(c.header) for c in columns if c.header) or "none"
        raise ImportFileError(
            f"Missing required column: {'; '.join(missing)}. Columns found: {found}. "
            "Nothing was imported."
        )
    return columns, notes


def _custom_name(raw: str) -> str:
    return _SPACES_OR_DASHES.sub("_", raw.strip().lower())


def _column_for(kind: str, index: int, header: str, key: str) -> Column:
    if kind == ImportRun.Kind.CONTACTS:
        return _contact_column(index, header, key)
    return _event_column(index, header, key)


def _prefixed(key: str, prefixes: tuple[str, ...]) -> str | None:
    """The rest of `key` after the first of `prefixes` it starts with (None: none, or nothing
    after it)."""
    for prefix in prefixes:
        if key.startswith(prefix) and key != prefix:
            return key.removeprefix(prefix)
    return None


def _contact_column(index: int, header: str, key: str) -> Column:
    if key in CONTACT_FIELDS:
        return Column(index, header, "field", key)
    if key in CONSENT_EXTRAS:
        return Column(index, header, key, key)
    if key.startswith("consent_") and key.removeprefix("consent_") in Channel.values:
        return Column(index, header, "consent", key.removeprefix("consent_"))
    if (name := _prefixed(key, ("attr_", "attributes."))) is not None:
        return Column(index, header, "attribute", _custom_name(name))
    return Column(index, header, "attribute", key)


def _event_column(index: int, header: str, key: str) -> Column:
    if key in EVENT_FIELDS:
        return Column(index, header, "field", key)
    contact_key = _prefixed(key, ("contact_", "contact."))
    if contact_key in CONTACT_KEYS:
        return Column(index, header, "contact", contact_key)
    if key in CONTACT_KEYS:
        return Column(index, header, "contact", key)
    if (name := _prefixed(key, ("prop_", "properties.", "property."))) is not None:
        return Column(index, header, "property", _custom_name(name))
    return Column(index, header, "property", key)
