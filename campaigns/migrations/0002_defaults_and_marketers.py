"""Default frequency caps: 3 marketing emails in 7 days, 1 SMS a day (editable in admin).
The Marketers group's permissions are declared in config/marketers.py. Idempotent."""

from django.db import migrations


def forwards(apps, schema_editor):
    FrequencyCap = apps.get_model("campaigns", "FrequencyCap")
    for channel, max_messages, days in (("email", 3, 7), ("sms", 1, 1)):
        FrequencyCap.objects.get_or_create(
            channel=channel, days=days, defaults={"max_messages": max_messages}
        )


class Migration(migrations.Migration):
    dependencies = [("campaigns", "0001_initial")]

    operations = [migrations.RunPython(forwards, migrations.RunPython.noop, elidable=False)]
