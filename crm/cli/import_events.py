"""`manage.py crm import-events FILE`: the command-line face of crm.services.importing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.models import ImportRun
from crm.services.importing import import_events_file

HELP = "Import events from a CSV file (docs/import.md)."
DESCRIPTION = (
    "Import events from a CSV file (UTF-8; a Windows-1252 line is read as such and "
    "flagged). Headers, in any case: type, occurred_at (ISO 8601 with a zone, e.g. "
    "2026-11-21T09:30:00Z) and at least one of email, phone, external_id naming the "
    "contact (created when new); optional id (the event's own id: a repeat is a "
    "duplicate), value, currency. prop_<name> or properties.<name> columns, and any other "
    "column, become event properties. A row without an id gets one from its content, so "
    "running the same file again changes nothing. A per-row report is written to "
    "var/imports/<run id>-<name>-report.csv. See docs/import.md."
)


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("file", type=Path, help="the CSV file, e.g. events.csv")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    path: Path = options["file"]
    if not path.is_file():
        raise CommandError(f"{path} is not a file.")
    command.stdout.ending = ""  # progress rewrites one line on a terminal
    run = import_events_file(path=path, stdout=command.stdout)
    if run.status == ImportRun.Status.FAILED:
        raise CommandError(f"Nothing imported: {run.error}")
