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
    database), as one executemany: for queue tables written on every ingest request, where
    bulk_create's per-object, per-field work cost more than the insert itself."""
    if not rows:
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.executemany(
            f"INSERT INTO {quote(model._meta.db_table)} "  # noqa: S608
            f"({', '.join(quote(column) for column in columns)}) "
            f"VALUES ({', '.join(['%s'] * len(columns))}) ON CONFLICT DO NOTHING",
            rows,
        )
