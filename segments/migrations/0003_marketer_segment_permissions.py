"""Marketers edit segments in admin: the "Marketers" group (created by crm, got or created
here too) gets segments' permissions. Idempotent."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Marketers"
PERMISSIONS = {
    "segment": ("view", "add", "change", "delete"),
    "segmentmembership": ("view",),
    "segmentsizesnapshot": ("view",),
    # Analytics are derived data: marketers read them, the analytics commands write them.
    "contactrfm": ("view",),
    "contactlifecycle": ("view",),
    "lifecyclechange": ("view",),
    "clusteringrun": ("view",),
    "contactcluster": ("view",),
    "contactprediction": ("view",),
}


def add_segment_permissions(apps, schema_editor):
    segments = apps.get_app_config("segments")
    segments.models_module = True
    create_permissions(segments, apps=apps, verbosity=0)
    segments.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    codenames = [f"{action}_{model}" for model, actions in PERMISSIONS.items() for action in actions]
    permissions = list(
        Permission.objects.filter(content_type__app_label="segments", codename__in=codenames)
    )
    missing = set(codenames) - {p.codename for p in permissions}
    if missing:
        raise RuntimeError(f"segments permissions missing for the Marketers group: {sorted(missing)}")
    group.permissions.add(*permissions)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("segments", "0002_definitions_membership"),
    ]

    operations = [
        migrations.RunPython(add_segment_permissions, migrations.RunPython.noop, elidable=False),
    ]
