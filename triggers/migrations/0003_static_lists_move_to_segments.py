"""Static lists move to segments (an audience campaigns can target). Every list and member is
copied with its id, one INSERT ... SELECT per table, before the old tables go; the reverse
copies them back. A member's firing becomes a plain id on the segments side."""

from django.apps.registry import Apps
from django.core.management.color import no_style
from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor

LIST_COLUMNS = ("id", "name", "slug", "description", "created_at")
MEMBER_COLUMNS = ("id", "static_list_id", "contact_id", "added_at", "added_by_firing_id")


def _copy(
    schema_editor: BaseDatabaseSchemaEditor, apps: Apps, *, source: str, target: str
) -> None:
    quote = schema_editor.quote_name
    lists = (apps.get_model(source, "StaticList"), apps.get_model(target, "StaticList"))
    members = (
        apps.get_model(source, "StaticListMember"),
        apps.get_model(target, "StaticListMember"),
    )
    firing_table = apps.get_model("triggers", "TriggerFiring")._meta.db_table
    list_columns = ", ".join(quote(c) for c in LIST_COLUMNS)
    member_columns = ", ".join(quote(c) for c in MEMBER_COLUMNS)
    source_list, target_list = (quote(m._meta.db_table) for m in lists)
    source_member, target_member = (quote(m._meta.db_table) for m in members)
    # Rows already in the target (a migration reversed and applied again) are kept as they are.
    schema_editor.execute(
        f"INSERT INTO {target_list} ({list_columns}) "
        f"SELECT {', '.join('s.' + quote(c) for c in LIST_COLUMNS)} FROM {source_list} s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {target_list} t WHERE t.{quote('id')} = s.{quote('id')})"
    )
    # The triggers side has a foreign key to the firing: an id whose firing is gone is dropped.
    firing = (
        f"(SELECT f.{quote('id')} FROM {quote(firing_table)} f "
        f"WHERE f.{quote('id')} = s.{quote('added_by_firing_id')})"
        if target == "triggers"
        else f"s.{quote('added_by_firing_id')}"
    )
    selected = [f"s.{quote(c)}" for c in MEMBER_COLUMNS[:-1]] + [firing]
    schema_editor.execute(
        f"INSERT INTO {target_member} ({member_columns}) SELECT {', '.join(selected)} "
        f"FROM {source_member} s WHERE NOT EXISTS (SELECT 1 FROM {target_member} t "
        f"WHERE t.{quote('id')} = s.{quote('id')} OR (t.{quote('static_list_id')} = "
        f"s.{quote('static_list_id')} AND t.{quote('contact_id')} = s.{quote('contact_id')}))"
    )
    # Ids were inserted explicitly: PostgreSQL's sequences must start after them.
    for sql in schema_editor.connection.ops.sequence_reset_sql(
        no_style(), [lists[1], members[1]]
    ):
        schema_editor.execute(sql)


def lists_to_segments(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _copy(schema_editor, apps, source="triggers", target="segments")


def lists_to_triggers(apps: Apps, schema_editor: BaseDatabaseSchemaEditor) -> None:
    _copy(schema_editor, apps, source="segments", target="triggers")


class Migration(migrations.Migration):
    dependencies = [
        ("segments", "0004_static_lists"),
        ("triggers", "0002_pending_order_index"),
    ]

    operations = [
        migrations.RunPython(lists_to_segments, lists_to_triggers),
        migrations.DeleteModel(name="StaticListMember"),
        migrations.DeleteModel(name="StaticList"),
    ]
