"""Small SQL helpers shared by the apps' hot paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Model


def rows_insert_ignoring_conflicts(
    model: type[Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT … ON CONFLICT DO NOTHING of ready-made rows (values already adapted for the
    database): for tables written on every ingest request or journey step, where
    bulk_create's per-object, per-field work cost more than the insert itself. PostgreSQL
    gets one statement with one array per column (`unnest`): one round trip, and a handful
    of placeholders for the driver to parse however many rows there are; SQLite, in-process,
    one executemany."""
    if not rows:
        return
    quote = connection.ops.quote_name
    head = (
        f"INSERT INTO {quote(model._meta.db_table)} "
        f"({', '.join(quote(column) for column in columns)}) "
    )
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            values = f"VALUES ({', '.join(['%s'] * len(columns))})"
            cursor.executemany(f"{head}{values} ON CONFLICT DO NOTHING", rows)
            return
        types = {field.column: field.cast_db_type(connection) for field in model._meta.fields}
        arrays = ", ".join(f"%s::{types[column]}[]" for column in columns)
        params = [list(values) for values in zip(*rows, strict=True)]
        sql = f"{head}SELECT * FROM unnest({arrays}) ON CONFLICT DO NOTHING"  # noqa: S608
        cursor.execute(sql, params)
