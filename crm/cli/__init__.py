"""Subcommands of `python manage.py crm <name>`, one module per subcommand, named in
crm.management.commands.crm.SUBCOMMANDS; core/management.py describes what a module provides."""
