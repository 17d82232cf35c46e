"""Create a key for the ingestion API and print it; it is shown this once only."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from crm.api.auth import api_key_create

HELP = "Create an API key for /api/v1/ and print it, once."
DESCRIPTION = (
    "Create an API key for /api/v1/ under NAME (e.g. shop-backend). The key is printed "
    "alone on the last line and cannot be shown again; only its hash is stored."
)


def add_arguments(parser: CommandParser) -> None:
    parser.add_argument("name", help="What the key is for, e.g. shop-backend.")


def handle(command: BaseCommand, options: dict[str, Any]) -> None:
    try:
        api_key, key = api_key_create(name=options["name"])
    except ValueError as exc:
        raise CommandError(str(exc)) from exc
    command.stdout.write(
        f"Created API key {api_key.name!r} (prefix {api_key.prefix}). "
        "Store it now; it cannot be shown again. Send it as 'Authorization: Bearer <key>'."
    )
    command.stdout.write(key)
