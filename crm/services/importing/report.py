"""The per-row report under var/imports/ and progress on the terminal and in admin."""

from __future__ import annotations

import csv
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO

from django.conf import settings

from crm.models import ImportRun

PROGRESS_INTERVAL = 5.0

REPORT_HEADER = ("row", "column", "value", "reason", "outcome", "line")

# Spreadsheets run a cell starting with one of these as a formula; the report echoes values
# from the file, so they are defused with a leading apostrophe (OWASP's CSV injection advice).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


class TextOutput(Protocol):
    """Where progress goes: sys.stdout, a management command's stdout, a StringIO."""

    def write(self, text: str, /) -> Any: ...

    def flush(self) -> Any: ...


def safe_name(filename: str) -> str:
    stem = Path(filename).name
    stem = stem[:-4] if stem.lower().endswith(".csv") else stem
    return _UNSAFE_NAME.sub("_", stem).strip("._")[:80] or "import"


def import_dir() -> Path:
    path = Path(settings.VAR_DIR) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def import_run_report_path(import_run: ImportRun) -> Path:
    return import_dir() / f"{import_run.pk}-{safe_name(import_run.filename)}-report.csv"


def import_run_upload_path(import_run: ImportRun) -> Path:
    """Where an admin upload is kept for its run: var/imports/<run id>-<name>.csv."""
    return import_dir() / f"{import_run.pk}-{safe_name(import_run.filename)}.csv"


def _defuse(value: str) -> str:
    return f"'{value}" if value.startswith(_FORMULA_START) else value


class Report:
    """The per-row report, written as rows are processed so memory stays flat. UTF-8 with a
    BOM, so that Excel shows "Zoë" and "王小明" as they are."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: TextIO = path.open("w", encoding="utf-8-sig", newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(REPORT_HEADER)
        self.lines = 0

    def add(
        self, *, row: int, column: str, value: str, reason: str, outcome: str, line: int | str
    ) -> None:
        self._writer.writerow([row, _defuse(column), _defuse(value), reason, outcome, line])
        self.lines += 1

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


@dataclass
class Counts:
    """Every row read is counted once: created, updated, unchanged or rejected. For events,
    created means accepted and unchanged means duplicate."""

    read: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0
    # Consent grants not recorded (the person withdrew themselves, or a suppressed address);
    # their rows still count as created, updated or unchanged.
    consents_refused: int = 0

    def fields(self) -> dict[str, int]:
        return {
            "rows_read": self.read,
            "rows_created": self.created,
            "rows_updated": self.updated,
            "rows_unchanged": self.unchanged,
            "rows_rejected": self.rejected,
            "consents_refused": self.consents_refused,
        }


class Progress:
    """Progress for the terminal (one updating line on a tty, a line every few seconds
    otherwise) and for admin (the run's rows_* fields, after every batch)."""

    def __init__(self, *, run: ImportRun, stdout: TextOutput | None) -> None:
        self._run = run
        self._stdout = stdout
        self._started = time.monotonic()
        self._last_line = 0.0
        isatty = getattr(stdout, "isatty", None)
        self._tty = bool(isatty and isatty())

    def describe(self, counts: Counts) -> str:
        elapsed = max(time.monotonic() - self._started, 1e-6)
        if self._run.kind == ImportRun.Kind.EVENTS:
            outcome = (
                f"accepted {counts.created:,} · duplicate {counts.unchanged:,} · "
                f"rejected {counts.rejected:,}"
            )
        else:
            outcome = (
                f"created {counts.created:,} · updated {counts.updated:,} · "
                f"unchanged {counts.unchanged:,} · rejected {counts.rejected:,}"
            )
            if counts.consents_refused:
                outcome += f" · consent grants refused {counts.consents_refused:,}"
        return f"{counts.read:,} rows read ({counts.read / elapsed:,.0f} rows/s): {outcome}"

    def batch_done(self, counts: Counts) -> None:
        ImportRun.objects.filter(pk=self._run.pk).update(**counts.fields())
        if self._stdout is None:
            return
        now = time.monotonic()
        if self._tty:
            self._stdout.write(f"\r{self.describe(counts)}\x1b[K")
            self._stdout.flush()
        elif now - self._last_line >= PROGRESS_INTERVAL:
            self._stdout.write(self.describe(counts) + "\n")
            self._last_line = now

    def finish(self, counts: Counts) -> None:
        ImportRun.objects.filter(pk=self._run.pk).update(**counts.fields())
        if self._stdout is not None:
            self._stdout.write(("\r" if self._tty else "") + self.describe(counts) + "\n")
