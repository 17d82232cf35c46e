"""Keyset pagination: walk a table in key order a page at a time, each page one indexed
range query (`key > last`), so the cost of a page does not grow with how far in it is, and
rows written behind the cursor while it walks are neither skipped nor read twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from django.db.models import Model, QuerySet

Row = TypeVar("Row")


def _key_of(row: Any, field: str) -> Any:
    if isinstance(row, Model):
        return row.pk if field == "pk" else getattr(row, field)
    if isinstance(row, dict):
        return row[field]
    if isinstance(row, tuple):
        return row[0]
    return row


def keyset_pages(
    queryset: QuerySet[Any, Row], *, size: int, field: str = "pk"
) -> Iterator[list[Row]]:
    """Pages of at most `size` rows of `queryset`, ordered by `field` ascending.

    Rows may be model instances, dicts (`values()`), tuples whose first column is `field`
    (`values_list(field, ...)`) or bare keys (`values_list(field, flat=True)`)."""
    if size < 1:
        raise ValueError(f"page size must be at least 1, not {size}")
    ordered = queryset.order_by(field)
    last: Any = None
    while True:
        page_query = ordered if last is None else ordered.filter(**{f"{field}__gt": last})
        page = list(page_query[:size])
        if not page:
            return
        yield page
        if len(page) < size:
            return
        last = _key_of(page[-1], field)
