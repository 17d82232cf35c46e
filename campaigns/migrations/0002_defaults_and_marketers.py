"""Default frequency caps (3 marketing emails in 7 days, 1 SMS a day; editable in admin) and
the Marketers group's campaign permissions. Idempotent."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

GROUP = "Marketers"
PERMISSIONS = {
    "campaign": ("view", "add", "change"),
    "variant": ("view", "add", "change", "delete"),
    "messagetemplate": ("view", "add", "change"),
    "delivery": ("view",),
    "response": ("view",),
    "frequencycap": ("view",),
}


def forwards(apps, schema_editor):
    FrequencyCap = apps.get_model("campaigns", "FrequencyCap")
    for channel, max_messages, days in (("email", 3, 7), ("sms", 1, 1)):
        FrequencyCap.objects.get_or_create(
            channel=channel, days=days, defaults={"max_messages": max_messages}
        )

    config = apps.get_app_config("campaigns")
    config.models_module = True
    create_permissions(config, apps=apps, verbosity=0)
    config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=GROUP)
    codenames = [f"{action}_{model}" for model, actions in PERMISSIONS.items() for action in actions]
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="campaigns", codename__in=codenames)
    )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("campaigns", "0001_initial"),
    ]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
