"""The database cache of the embedded default counts rate limits: its increments must be
atomic and keep the entry's expiry, as Redis's INCR does."""

from __future__ import annotations

import pytest
from django.db import connection

from config.cache import DatabaseCache

pytestmark = pytest.mark.django_db

# The embedded default's backend itself: with REDIS_URL set (as in CI's second run) the
# default cache is Redis, but this table and backend are what a server-less install counts in.
cache = DatabaseCache("cadence_cache", {})


def _expires_of(key: str) -> object:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT expires FROM cadence_cache WHERE cache_key = %s",
            [cache.make_and_validate_key(key)],
        )
        return cursor.fetchone()[0]


def test_incrementing_a_counter_keeps_its_expiry() -> None:
    """Django's DatabaseCache.incr re-sets the value with the default timeout (300 s), so an
    hourly rate-limit window ended five minutes after the last request."""
    cache.add("counter", 1, 3600)
    expires = _expires_of("counter")

    assert cache.incr("counter") == 2
    assert cache.incr("counter", 5) == 7

    assert _expires_of("counter") == expires
    assert cache.get("counter") == 7


def test_incrementing_a_missing_counter_raises_value_error() -> None:
    with pytest.raises(ValueError, match="not found"):
        cache.incr("never-set")
