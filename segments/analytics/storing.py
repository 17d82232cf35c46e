"""Writing one derived row per contact (scores, predictions) in batches."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from django.db import transaction
from django.db.models import Model

from core.batching import chunks

_M = TypeVar("_M", bound=Model)


def contact_rows_upsert(
    *,
    model: type[_M],
    row: Callable[[int], _M],
    total: int,
    update_fields: Sequence[str],
    batch_size: int,
    progress: Callable[[int, int], None] | None = None,
) -> None:
    """Insert or update `row(i)` for i in 0..total-1, keyed by contact (the model's unique
    `contact` field), `batch_size` rows per transaction; `progress(done, total)` after each
    batch."""
    for indexes in chunks(range(total), batch_size):
        batch = [row(i) for i in indexes]
        with transaction.atomic():
            model._default_manager.bulk_create(
                batch,
                update_conflicts=True,
                unique_fields=["contact"],
                update_fields=list(update_fields),
            )
        if progress:
            progress(indexes[-1] + 1, total)
