"""The database cache of the embedded default, fit for counting rate limits.

Django's DatabaseCache increments by reading the value and setting it again, which has two
faults for a counter that django-ratelimit (and the API's limits) rely on: two requests at
once can both read 4 and both write 5, and `set` gives the entry the default timeout (300 s),
so an hourly window ended five minutes after the last request. This backend increments
under a row lock in one transaction and keeps the entry's expiry, as Redis's INCR does.
"""

from __future__ import annotations

import base64
import pickle
from typing import Any

from django.core.cache.backends import db
from django.db import connections, router, transaction
from django.utils.timezone import now as tz_now


class DatabaseCache(db.DatabaseCache):
    def incr(self, key: Any, delta: int = 1, version: int | None = None) -> Any:
        alias = router.db_for_write(self.cache_model_class)
        connection = connections[alias]
        quote = connection.ops.quote_name
        table, key_column, value_column, expires_column = (
            quote(self._table),  # type: ignore[attr-defined]  # set by Django, not in the stubs
            quote("cache_key"),
            quote("value"),
            quote("expires"),
        )
        cache_key = self.make_and_validate_key(key, version=version)
        now = connection.ops.adapt_datetimefield_value(tz_now())
        # PostgreSQL locks the row; SQLite runs this project's transactions IMMEDIATE
        # (config/settings.py), so the whole database is write-locked from the first read.
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        with transaction.atomic(using=alias), connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {value_column} FROM {table} "  # noqa: S608 (quoted names only)
                f"WHERE {key_column} = %s AND {expires_column} > %s{lock}",
                [cache_key, now],
            )
            row = cursor.fetchone()
            if row is None:
                raise ValueError(f"Key '{key}' not found.")
            stored = connection.ops.process_clob(row[0])
            value = pickle.loads(base64.b64decode(stored.encode())) + delta  # noqa: S301 (our own rows)
            encoded = base64.b64encode(pickle.dumps(value, self.pickle_protocol)).decode("latin1")
            cursor.execute(
                f"UPDATE {table} SET {value_column} = %s WHERE {key_column} = %s",  # noqa: S608
                [encoded, cache_key],
            )
        return value
