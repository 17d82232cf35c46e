"""One shape for management commands: `python manage.py <app> <subcommand> [options]`.

Each app has a single command, a SubcommandCommand subclass naming its subcommands, so
`manage.py <app> --help` lists everything the app can do and a new subcommand is one more
entry, not one more module in management/commands/. A subcommand is declared in place
(Subcommand(...)) or, when it is long, as a module of its app's cli/ package providing:

    HELP: str                                               # one line, for `<app> --help`
    DESCRIPTION: str                                        # optional, for `<app> <name> --help`
    def add_arguments(parser: CommandParser) -> None: ...   # optional, its own options
    def handle(command: BaseCommand, options: dict[str, Any]) -> None: ...

A handler writes through command.stdout / command.stderr / command.style and raises
CommandError for bad input, as a BaseCommand.handle would.
"""

from __future__ import annotations

import copy
import importlib
from argparse import SUPPRESS
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Protocol

from django.core.management.base import BaseCommand, CommandError, CommandParser

Handler = Callable[[BaseCommand, dict[str, Any]], None]
Arguments = Callable[[CommandParser], None]


def _no_arguments(parser: CommandParser) -> None:
    return None


@dataclass(frozen=True)
class Subcommand:
    name: str
    help: str
    handler: Handler
    arguments: Arguments = _no_arguments
    description: str = ""

    @classmethod
    def from_module(cls, name: str, module: str) -> Subcommand:
        """The subcommand `name` provided by `module` (the shape in this module's docstring)."""
        found = importlib.import_module(module)
        return cls(
            name=name,
            help=found.HELP,
            handler=found.handle,
            arguments=getattr(found, "add_arguments", _no_arguments),
            description=getattr(found, "DESCRIPTION", ""),
        )


class SubcommandCommand(BaseCommand):
    """Subclasses set `app` (the command's name) and `subcommands`."""

    app: ClassVar[str]
    subcommands: ClassVar[Sequence[Subcommand]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "help" not in cls.__dict__:
            names = ", ".join(sub.name for sub in cls.subcommands)
            cls.help = f"{cls.app.capitalize()}: {names}. Run `{cls.app} <subcommand> --help`."

    def add_arguments(self, parser: CommandParser) -> None:
        # BaseCommand has added its own options (--verbosity, --traceback, ...) by now. Each
        # subparser accepts them too, so `crm import-contacts FILE -v 0` works as it did when
        # the subcommand was a command of its own; SUPPRESS keeps a value given before the
        # subcommand from being reset to the default.
        common = [
            action
            for action in parser._actions
            if action.option_strings and action.dest not in {"help", "version"}
        ]
        subparsers = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
        for sub in self.subcommands:
            subparser = subparsers.add_parser(
                sub.name, help=sub.help, description=sub.description or sub.help
            )
            for action in common:
                clone = copy.copy(action)
                clone.default = SUPPRESS
                subparser._add_action(clone)
            sub.arguments(subparser)

    def handle(self, *args: Any, **options: Any) -> None:
        name = options.get("subcommand")
        by_name = {sub.name: sub for sub in self.subcommands}
        if name not in by_name:
            raise CommandError(f"choose a subcommand: {', '.join(by_name)}")
        by_name[name].handler(self, options)


class ImportReport(Protocol):
    """What a file import reports: slugs created, updated and unchanged, or every error."""

    @property
    def created(self) -> Sequence[str]: ...
    @property
    def updated(self) -> Sequence[str]: ...
    @property
    def unchanged(self) -> Sequence[str]: ...
    @property
    def errors(self) -> Sequence[str]: ...


def input_text(path: Path) -> str:
    """The text of a file named on the command line, or a CommandError naming it."""
    if not path.is_file():
        raise CommandError(f"{path}: no such file")
    return path.read_text(encoding="utf-8")


def output_write(command: BaseCommand, text: str, output: str | None) -> Path | None:
    """`text` to the file `output` names (returned), or to stdout when there is none."""
    if not output:
        command.stdout.write(text, ending="")
        return None
    target = Path(output)
    if target.exists() and not target.is_file():
        raise CommandError(f"{target} is not a regular file; refusing to replace it.")
    target.write_text(text, encoding="utf-8")
    return target


def import_report_write(command: BaseCommand, path: Path, report: ImportReport) -> None:
    """Every error (and a CommandError: nothing was imported), else the counts and slugs."""
    if report.errors:
        for error in report.errors:
            command.stderr.write(f"{path}: {error}\n")
        raise CommandError(f"nothing imported: {len(report.errors)} problem(s) in {path}")
    command.stdout.write(
        f"created {len(report.created)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}\n"
    )
    for slug in report.created:
        command.stdout.write(f"  created {slug}\n")
    for slug in report.updated:
        command.stdout.write(f"  updated {slug}\n")
