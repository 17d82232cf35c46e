"""Small SQL helpers shared by the apps' hot paths."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connection
from django.db.models import Model

# Rows per multi-row INSERT on PostgreSQL: one round trip for a batch, well under its limit
# of 65,535 bound parameters for any table here.
ROWS_PER_INSERT = 1000


def rows_insert_ignoring_conflicts(
    model: type[Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]
) -> None:
    """INSERT … ON CONFLICT DO NOTHING of ready-made rows (values already adapted for the
    database): for tables written on every ingest request or journey step, where
    bulk_create's per-object, per-field work cost more than the insert itself. PostgreSQL
    gets multi-row statements (one round trip per ROWS_PER_INSERT rows rather than one per
    row); SQLite, in-process, one executemany."""
    if not rows:
        return
    quote = connection.ops.quote_name
    head = (
        f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
        f"({', '.join(quote(column) for column in columns)}) VALUES "
    )
    one = f"({', '.join(['%s'] * len(columns))})"
    with connection.cursor() as cursor:
        if connection.vendor != "postgresql":
            cursor.executemany(f"{head}{one} ON CONFLICT DO NOTHING", rows)
            return
        for start in range(0, len(rows), ROWS_PER_INSERT):
            chunk = rows[start : start + ROWS_PER_INSERT]
            values = ", ".join([one] * len(chunk))
            params = [value for row in chunk for value in row]
            cursor.execute(f"{head}{values} ON CONFLICT DO NOTHING", params)
