"""Subcommands of `python manage.py segments <name>`, one module per subcommand.

A module named in segments.management.commands.segments.SUBCOMMANDS provides:

    HELP: str                                                   # one line for --help
    def add_arguments(parser: CommandParser) -> None: ...       # its own options
    def handle(command: BaseCommand, options: dict[str, Any]) -> None: ...

`handle` writes through command.stdout / command.style and raises CommandError for bad input.
"""
