"""Erase one person's personal data (a GDPR erasure request)."""

from __future__ import annotations

import getpass
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.cli.export_contact import IDENTIFIER_HELP
from crm.services.privacy import ContactAmbiguous, ContactNotFound, contact_erase
from crm.services.privacy import contact_for_identifier as find_contact

HELP = "Erase a contact's personal data (a GDPR erasure request)."
DESCRIPTION = (
    "Erase a contact's personal data: names, addresses, attributes, aliases, IP addresses "
    "and user agents in the consent ledger, event properties. Keeps anonymised rows for "
    "aggregates and hashed suppression entries so the person is never imported back into "
    "marketing. Safe to run twice."
)


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("identifier", help=f"Which contact: {IDENTIFIER_HELP}.")
    parser.add_argument(
        "--requested-by",
        default="",
        help="Who asked for the erasure, for the log, e.g. dpo@example.com; default the "
        "login running the command.",
    )


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    try:
        contact = find_contact(identifier=options["identifier"])
    except (ContactNotFound, ContactAmbiguous) as exc:
        raise CommandError(str(exc)) from exc
    requested_by = options["requested_by"] or f"crm erase-contact ({getpass.getuser()})"
    contact_erase(contact=contact, requested_by=requested_by)
    command.stdout.write(command.style.SUCCESS(f"Erased contact {contact.uuid}."))
