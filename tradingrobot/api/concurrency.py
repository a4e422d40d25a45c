"""At most N expensive requests at once per key (or user): a slot counter in Redis.

    with concurrency_slot(f"backtest:{ident}", limit=2):
        ...  # raises TooBusy (429) when the key already runs `limit` of them

The counter expires after `ttl` seconds, so a process killed inside the block frees its slot by
then. If Redis is down the work runs unlimited (logged by tradingrobot.redis_outage): a limit is
not worth an outage.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.core.cache import cache
from rest_framework.exceptions import Throttled

from tradingrobot.redis_outage import redis_call


class TooBusy(Throttled):
    default_detail = "Too many of these requests are running for this key; try again shortly."
    default_code = "too_busy"


def _acquire(key: str, ttl: int) -> int:
    cache.add(key, 0, timeout=ttl)
    used = cache.incr(key)
    cache.touch(key, ttl)
    return used


@contextmanager
def concurrency_slot(
    name: str, *, limit: int, ttl: int = 300, retry_after: int = 5
) -> Iterator[None]:
    key = f"concurrency:{name}"
    used = redis_call("concurrency limit", _acquire, key, ttl)
    if used is not None and used > limit:
        redis_call("concurrency limit", cache.decr, key)
        raise TooBusy(wait=retry_after)
    try:
        yield
    finally:
        if used is not None:
            redis_call("concurrency limit", cache.decr, key)
