"""`manage.py crm import-contacts FILE`: the command-line face of crm.services.importing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.models import ImportRun
from crm.services.importing import import_contacts_file

HELP = "Import contacts from a CSV file (docs/import.md)."
DESCRIPTION = (
    "Import contacts from a CSV file (UTF-8; a Windows-1252 line is read as such and "
    "flagged). Headers, in any case: email, phone, external_id (at least one of them), "
    "first_name, last_name, timezone, locale, country. consent_email / consent_sms "
    "(granted, withdrawn, yes, no, true, false, 1, 0) with optional consent_text, "
    "consent_purpose, consent_text_version record consent with the file and row as proof. "
    "Every other column becomes a custom attribute named after its header (lowercased, "
    "spaces as _); an attr_ prefix is dropped, so attr_email is the attribute 'email'. "
    "Blank cells leave existing values alone. Rows are saved in batches; a per-row report "
    "is written to var/imports/<run id>-<name>-report.csv. Running the same file again "
    "changes nothing. See docs/import.md."
)


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("file", type=Path, help="the CSV file, e.g. contacts.csv")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    path: Path = options["file"]
    if not path.is_file():
        raise CommandError(f"{path} is not a file.")
    command.stdout.ending = ""  # progress rewrites one line on a terminal
    run = import_contacts_file(path=path, stdout=command.stdout)
    if run.status == ImportRun.Status.FAILED:
        raise CommandError(f"Nothing imported: {run.error}")
