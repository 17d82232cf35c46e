"""Cutting long lists into pieces one SQL statement or one task can carry."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TypeVar

from django.db import connection

T = TypeVar("T")

# Room left for a statement's own parameters beside the list of values.
_PARAM_HEADROOM = 10
_PARAM_FALLBACK = 5000


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    """`items` in consecutive lists of at most `size`, in order."""
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, not {size}")
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


def max_params_per_statement() -> int:
    """How many values one `IN (...)` list may carry on this database (SQLite builds cap
    the number of bound parameters; PostgreSQL does not report a limit)."""
    return (connection.features.max_query_params or _PARAM_FALLBACK) - _PARAM_HEADROOM
