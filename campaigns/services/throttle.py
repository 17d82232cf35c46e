"""Messages-per-second per channel, honoured across every worker on every machine: a token
bucket kept where all workers see it. One algorithm, two stores:

- the database (the embedded default, and PostgreSQL without Redis): one ThrottleBucket row
  per channel, read with SELECT ... FOR UPDATE inside a transaction (SQLite has no row locks,
  but the project's IMMEDIATE transactions take the write lock first, which serialises it);
- Redis, when settings.REDIS_URL is set: the same arithmetic in one Lua script, atomic on the
  server and timed by the server's clock.

The bucket holds at most one second of tokens (a burst of `rate`). A worker takes tokens for
several messages at once to keep the store's load low, and sleeps until the next token when
the bucket is empty (the rate is 0 for unlimited: no store is touched).
"""

from __future__ import annotations

import functools
import time
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from campaigns.models import ThrottleBucket
from crm.models import Channel

_LUA = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local want = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - ts) * rate)
local granted = math.min(want, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return {granted, tostring(tokens)}
"""


def channel_rate(channel: str) -> float:
    rates: dict[str, float] = {
        Channel.EMAIL: settings.SEND_RATE_EMAIL_PER_SECOND,
        Channel.SMS: settings.SEND_RATE_SMS_PER_SECOND,
    }
    return float(rates.get(channel, 0) or 0)


@functools.lru_cache(maxsize=4)
def _redis_script(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url).register_script(_LUA)


def _take_redis(channel: str, want: int, rate: float, capacity: float) -> tuple[int, float]:
    granted, tokens = _redis_script(settings.REDIS_URL)(
        keys=[f"cadence:throttle:{channel}"], args=[rate, capacity, want]
    )
    return int(granted), float(tokens)


def _take_db(channel: str, want: int, rate: float, capacity: float) -> tuple[int, float]:
    with transaction.atomic():
        bucket, _ = ThrottleBucket.objects.select_for_update().get_or_create(
            channel=channel, defaults={"tokens": capacity, "updated_at": timezone.now()}
        )
        # The clock is read under the lock, so updates never go back in time.
        now = timezone.now()
        elapsed = max((now - bucket.updated_at).total_seconds(), 0.0)
        tokens = min(capacity, bucket.tokens + elapsed * rate)
        granted = min(want, int(tokens))
        bucket.tokens = tokens - granted
        bucket.updated_at = now
        bucket.save(update_fields=["tokens", "updated_at"])
    return granted, bucket.tokens


def throttle_take(*, channel: str, want: int) -> tuple[int, float]:
    """Take up to `want` tokens now: (granted, seconds until the next token when none was)."""
    rate = channel_rate(channel)
    if rate <= 0 or want <= 0:
        return want, 0.0
    capacity = max(rate, 1.0)
    if settings.REDIS_URL:
        granted, tokens = _take_redis(channel, want, rate, capacity)
    else:
        granted, tokens = _take_db(channel, want, rate, capacity)
    wait = 0.0 if granted else max((1.0 - tokens) / rate, 0.001)
    return granted, wait


def throttle_acquire(*, channel: str, want: int) -> int:
    """At least one token (up to `want`), sleeping while the bucket is empty."""
    while True:
        granted, wait = throttle_take(channel=channel, want=want)
        if granted:
            return granted
        time.sleep(min(wait, 1.0))
