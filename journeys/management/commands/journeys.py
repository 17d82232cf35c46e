"""`python manage.py journeys import|export`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.management import Subcommand, SubcommandCommand


def _export(command: BaseCommand, options: dict[str, Any]) -> None:
    from journeys.models import Journey
    from journeys.yaml_io import journeys_export

    slugs = [options["slug"]] if options.get("slug") else None
    if slugs and not Journey.objects.filter(slug__in=slugs).exists():
        raise CommandError(f"no journey with the slug {options['slug']!r}")
    text = journeys_export(slugs=slugs)
    if options.get("output"):
        target = Path(options["output"])
        if target.exists() and not target.is_file():
            raise CommandError(f"{target} is not a regular file; refusing to replace it.")
        target.write_text(text, encoding="utf-8")
        command.stdout.write(f"wrote {target}\n")
    else:
        command.stdout.write(text, ending="")


def _import(command: BaseCommand, options: dict[str, Any]) -> None:
    from journeys.yaml_io import journeys_import

    path = Path(options["file"])
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    report = journeys_import(text=path.read_text(encoding="utf-8"))
    if report.errors:
        for error in report.errors:
            command.stderr.write(f"{path}: {error}\n")
        raise CommandError(f"nothing imported: {len(report.errors)} problem(s) in {path}")
    if not report.created and not report.updated:
        command.stdout.write(f"nothing changed: {len(report.unchanged)} journey(s) up to date\n")
        return
    command.stdout.write(
        f"created {len(report.created)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}\n"
    )
    for slug in report.created:
        command.stdout.write(f"  created {slug}\n")
    for slug in report.updated:
        command.stdout.write(f"  updated {slug}\n")


def _export_arguments(parser: CommandParser) -> None:
    parser.add_argument("slug", nargs="?", help="Only this journey.")
    parser.add_argument("--output", "-o", help="A file to write instead of stdout.")


def _import_arguments(parser: CommandParser) -> None:
    parser.add_argument("file")


class Command(SubcommandCommand):
    app = "journeys"
    help = "Journeys: export to / import from YAML."
    subcommands = [
        Subcommand(
            "export", "Write journeys as YAML (stdout by default).", _export, _export_arguments
        ),
        Subcommand(
            "import", "Validate and load a YAML file (all or nothing).", _import, _import_arguments
        ),
    ]
