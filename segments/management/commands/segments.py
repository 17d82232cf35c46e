"""`python manage.py segments <subcommand> ...`: one command, subcommands in segments/cli/.

Adding a subcommand: write segments/cli/<name>.py (the shape is in core/management.py) and add
one line to SUBCOMMANDS.
"""

from __future__ import annotations

from core.management import Subcommand, SubcommandCommand

SUBCOMMANDS: dict[str, str] = {
    "refresh": "segments.cli.refresh",
    "list": "segments.cli.list",
    "rfm": "segments.cli.rfm",
    "cluster": "segments.cli.cluster",
    "fit-clv": "segments.cli.fit_clv",
    "lifecycle": "segments.cli.lifecycle",
}


class Command(SubcommandCommand):
    app = "segments"
    subcommands = [Subcommand.from_module(name, module) for name, module in SUBCOMMANDS.items()]
