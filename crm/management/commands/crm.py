"""`python manage.py crm <subcommand> ...`: one command, subcommands in crm/cli/.

Adding a subcommand: write crm/cli/<name>.py (the shape is in core/management.py) and add one
line to SUBCOMMANDS.
"""

from __future__ import annotations

from core.management import Subcommand, SubcommandCommand

SUBCOMMANDS: dict[str, str] = {
    "import-contacts": "crm.cli.import_contacts",
    "import-events": "crm.cli.import_events",
    "create-api-key": "crm.cli.create_api_key",
    "data-quality": "crm.cli.data_quality",
    "find-duplicates": "crm.cli.find_duplicates",
    "merge-duplicates": "crm.cli.merge_duplicates",
    "export-contact": "crm.cli.export_contact",
    "erase-contact": "crm.cli.erase_contact",
    "ensure-admin": "crm.cli.ensure_admin",
    "setup-periodic-tasks": "crm.cli.setup_periodic_tasks",
}


class Command(SubcommandCommand):
    app = "crm"
    subcommands = [Subcommand.from_module(name, module) for name, module in SUBCOMMANDS.items()]
