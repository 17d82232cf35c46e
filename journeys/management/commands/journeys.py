"""`python manage.py journeys import|export|advance`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.management import (
    Subcommand,
    SubcommandCommand,
    import_report_write,
    input_text,
    output_write,
)


def _export(command: BaseCommand, options: dict[str, Any]) -> None:
    from journeys.models import Journey
    from journeys.yaml_io import journeys_export

    slugs = [options["slug"]] if options.get("slug") else None
    if slugs and not Journey.objects.filter(slug__in=slugs).exists():
        raise CommandError(f"no journey with the slug {options['slug']!r}")
    target = output_write(command, journeys_export(slugs=slugs), options.get("output"))
    if target is not None:
        command.stdout.write(f"wrote {target}\n")


def _import(command: BaseCommand, options: dict[str, Any]) -> None:
    from journeys.yaml_io import journeys_import

    path = Path(options["file"])
    report = journeys_import(text=input_text(path))
    if not report.errors and not report.created and not report.updated:
        command.stdout.write(f"nothing changed: {len(report.unchanged)} journey(s) up to date\n")
        return
    import_report_write(command, path, report)


def _advance(command: BaseCommand, options: dict[str, Any]) -> None:
    from journeys.engine.due import due_advance

    report, _ = due_advance(budget_seconds=options["budget"])
    if options["json"]:
        command.stdout.write(json.dumps(report.as_dict(), indent=2) + "\n")
    else:
        command.stdout.write(report.summary() + "\n")


def _advance_arguments(parser: CommandParser) -> None:
    parser.add_argument("--json", action="store_true", help="Print the report as JSON.")
    parser.add_argument(
        "--budget",
        type=float,
        default=300.0,
        help="Stop claiming after this many seconds, e.g. 60 (default 300).",
    )


def _export_arguments(parser: CommandParser) -> None:
    parser.add_argument("slug", nargs="?", help="Only this journey.")
    parser.add_argument("--output", "-o", help="A file to write instead of stdout.")


def _import_arguments(parser: CommandParser) -> None:
    parser.add_argument("file")


class Command(SubcommandCommand):
    app = "journeys"
    help = "Journeys: export to / import from YAML; advance due steps now."
    subcommands = [
        Subcommand(
            "export", "Write journeys as YAML (stdout by default).", _export, _export_arguments
        ),
        Subcommand(
            "import", "Validate and load a YAML file (all or nothing).", _import, _import_arguments
        ),
        Subcommand(
            "advance",
            "Run the steps that are due now (what beat runs every 15 s) and say what moved.",
            _advance,
            _advance_arguments,
        ),
    ]
