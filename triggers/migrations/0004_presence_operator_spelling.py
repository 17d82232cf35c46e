"""Attribute conditions stored with the presence tests' older spelling (`exists` /
`not_exists`) are rewritten to the shared vocabulary's (`is_set` / `is_not_set`), so that
saving such a rule unchanged records no new version. Both spellings compile alike; version
history keeps what was saved at the time. Rules are few (written by marketers), so they are
read one by one."""

from typing import Any

from django.db import migrations

NEW = {"exists": "is_set", "not_exists": "is_not_set"}
OLD = {new: old for old, new in NEW.items()}


def _respelled(conditions: Any, spelling: dict[str, str]) -> tuple[Any, bool]:
    if not isinstance(conditions, list):
        return conditions, False
    changed = False
    result = []
    for entry in conditions:
        operator = entry.get("operator") if isinstance(entry, dict) else None
        if entry_is_attribute(entry) and operator in spelling:
            entry = {**entry, "operator": spelling[operator]}
            changed = True
        result.append(entry)
    return result, changed


def entry_is_attribute(entry: Any) -> bool:
    return isinstance(entry, dict) and entry.get("id") == "attribute"


def _rewrite(apps: Any, spelling: dict[str, str]) -> None:
    TriggerRule = apps.get_model("triggers", "TriggerRule")
    for rule in TriggerRule.objects.only("conditions").iterator():
        conditions, changed = _respelled(rule.conditions, spelling)
        if changed:
            TriggerRule.objects.filter(pk=rule.pk).update(conditions=conditions)


def forwards(apps: Any, schema_editor: Any) -> None:
    _rewrite(apps, NEW)


def backwards(apps: Any, schema_editor: Any) -> None:
    _rewrite(apps, OLD)


class Migration(migrations.Migration):
    dependencies = [("triggers", "0003_static_lists_move_to_segments")]

    operations = [migrations.RunPython(forwards, backwards)]
