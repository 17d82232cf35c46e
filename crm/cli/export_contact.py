"""Write everything held about one person to a JSON file (a GDPR access request)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.services.privacy import ContactAmbiguous, ContactNotFound, contact_export
from crm.services.privacy import contact_for_identifier as find_contact

IDENTIFIER_HELP = (
    "the contact's public uuid (e.g. 3f2b9c1e-...), its external id (e.g. CUST-10042), or "
    "an email address it has or had before a merge"
)


HELP = "Write everything held about a contact to a JSON file (a GDPR access request)."
DESCRIPTION = (
    "Export everything held about a contact (profile, consent ledger, events, aliases, and "
    "the rows of every app that points at the contact) as JSON, and print the file's path."
)


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("identifier", help=f"Which contact: {IDENTIFIER_HELP}.")
    parser.add_argument(
        "--output",
        "-o",
        help="Where to write the JSON; default var/exports/<uuid>.json.",
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    try:
        contact = find_contact(identifier=options["identifier"])
    except (ContactNotFound, ContactAmbiguous) as exc:
        raise CommandError(str(exc)) from exc
    data = contact_export(contact=contact)
    if options["output"]:
        path = Path(options["output"]).resolve()
    else:
        path = Path(settings.VAR_DIR) / "exports" / f"{contact.uuid}.json"
    if path.exists() and not path.is_file():
        # Never replace a device or a directory (the rename below would, as root).
        raise CommandError(f"{path} exists and is not a regular file; choose another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    # Personal data: readable by the owner only, written then renamed so that a reader
    # never sees half a file.
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    tmp.replace(path)
    command.stdout.write(str(path))
