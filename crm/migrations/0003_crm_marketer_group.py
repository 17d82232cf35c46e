"""The "Marketers" group: what a non-superuser marketer needs to work in admin.

Idempotent (get_or_create, add): running it again, or after later apps added their own
permissions to the group, changes nothing. Permissions are normally created after all
migrations, so this creates crm's first. No delete on contacts (erasure is for staff with
that permission), nothing on API keys, the consent ledger view-only."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Marketers"
PERMISSIONS = {
    "contact": ("view", "add", "change"),
    "event": ("view", "add", "change"),
    "consentrecord": ("view",),
    "suppression": ("view", "add"),
    "doubleoptin": ("view",),
    "mergecandidate": ("view", "change"),
    "contactmerge": ("view",),
    "importrun": ("view", "add"),
}


def add_marketer_group(apps, schema_editor):
    crm = apps.get_app_config("crm")
    crm.models_module = True
    create_permissions(crm, apps=apps, verbosity=0)
    crm.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    codenames = [
        f"{action}_{model}" for model, actions in PERMISSIONS.items() for action in actions
    ]
    permissions = list(
        Permission.objects.filter(content_type__app_label="crm", codename__in=codenames)
    )
    missing = set(codenames) - {p.codename for p in permissions}
    if missing:
        raise RuntimeError(f"crm permissions missing for the Marketers group: {sorted(missing)}")
    group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("crm", "0002_quality_report_proxy"),
    ]

    operations = [
        migrations.RunPython(add_marketer_group, migrations.RunPython.noop, elidable=False),
    ]
