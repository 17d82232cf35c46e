"""`python manage.py segments <subcommand> ...`: one command, subcommands in segments/cli/.

Adding a subcommand: write segments/cli/<name>.py (see segments/cli/__init__.py for what it
provides) and add one line to SUBCOMMANDS.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

SUBCOMMANDS: dict[str, str] = {
    "refresh": "segments.cli.refresh",
    "list": "segments.cli.list",
    "rfm": "segments.cli.rfm",
    "cluster": "segments.cli.cluster",
    "fit-clv": "segments.cli.fit_clv",
    "lifecycle": "segments.cli.lifecycle",
}


def _module(name: str) -> ModuleType:
    return importlib.import_module(SUBCOMMANDS[name])


class Command(BaseCommand):
    help = "Segments: " + ", ".join(SUBCOMMANDS) + ". Run `segments <subcommand> --help`."

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
        for name in SUBCOMMANDS:
            module = _module(name)
            sub = subparsers.add_parser(name, help=getattr(module, "HELP", ""))
            module.add_arguments(sub)

    def handle(self, *args: Any, **options: Any) -> None:
        name = options.get("subcommand")
        if not name:
            raise CommandError(f"choose a subcommand: {', '.join(SUBCOMMANDS)}")
        _module(name).handle(self, options)
