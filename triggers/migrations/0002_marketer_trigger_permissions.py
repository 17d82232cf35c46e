"""Marketers edit trigger rules in admin: the "Marketers" group (created by crm, got or
created here too) gets triggers' permissions. Idempotent."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Marketers"
PERMISSIONS = {
    "triggerrule": ("view", "add", "change", "delete"),
    "triggerruleversion": ("view",),
    # Firings are the ledger: marketers read them and may retry a failed one (change).
    "triggerfiring": ("view", "change"),
    "staticlist": ("view", "add", "change", "delete"),
    "staticlistmember": ("view", "add", "delete"),
}


def add_trigger_permissions(apps, schema_editor):
    triggers = apps.get_app_config("triggers")
    triggers.models_module = True
    create_permissions(triggers, apps=apps, verbosity=0)
    triggers.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    codenames = [f"{action}_{model}" for model, actions in PERMISSIONS.items() for action in actions]
    permissions = list(
        Permission.objects.filter(content_type__app_label="triggers", codename__in=codenames)
    )
    missing = set(codenames) - {p.codename for p in permissions}
    if missing:
        raise RuntimeError(f"triggers permissions missing for the Marketers group: {sorted(missing)}")
    group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("triggers", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(add_trigger_permissions, migrations.RunPython.noop, elidable=False),
    ]
