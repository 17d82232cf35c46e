"""`python manage.py devtools <subcommand> ...`: one command, subcommands in devtools/cli/.

Adding a subcommand: write devtools/cli/<name>.py (the shape is in core/management.py) and
add one line to SUBCOMMANDS.
"""

from __future__ import annotations

from core.management import Subcommand, SubcommandCommand

SUBCOMMANDS: dict[str, str] = {
    "demo": "devtools.cli.demo",
    "load-demo-data": "devtools.cli.load_demo_data",
    "bench": "devtools.cli.bench",
    "latency-probe": "devtools.cli.latency_probe",
}


class Command(SubcommandCommand):
    app = "devtools"
    subcommands = [Subcommand.from_module(name, module) for name, module in SUBCOMMANDS.items()]
