"""Django's Redis cache backend with one redis-py client per process, shared by every thread.

Django's backend wraps its connection pool in a new `redis.Redis` on every cache call, and
redis-py (6+) rebuilds its table of response callbacks in that constructor: about 0.2 ms per
call, more than the round trip to a local Redis. The API's hot path makes one or two cache
calls per request (the rate-limit counter, a version stamp), so that constructor was a large
share of a cached read. A `redis.Redis` over a pool is thread-safe, so one per pool serves the
whole process.

Django also keeps one cache backend per thread, and under ASGI each request's sync code runs in
a fresh thread: with the stock backend every such request opened its own Redis connection.
Backends configured alike here share one client, and so one pool, across threads.
"""

from __future__ import annotations

import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.utils.functional import cached_property

_lock = threading.Lock()
_shared: dict[tuple, SharedRedisCacheClient] = {}

# KEYS[1]: a fixed-window counter, created at 0 to expire after ARGV[1] seconds, then counted;
# KEYS[2..]: read in the same step.
_COUNT_AND_GET_LUA = """
redis.call('SET', KEYS[1], 0, 'EX', ARGV[1], 'NX')
local used = redis.call('INCR', KEYS[1])
if #KEYS == 1 then return {used} end
return {used, redis.call('MGET', unpack(KEYS, 2))}
"""


class SharedRedisCacheClient(RedisCacheClient):
    """Django's client, reusing one `redis.Redis` per connection pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._count_script: Any = None

    def get_client(self, key: str | None = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            with _lock:
                client = self._clients.get(index)
                if client is None:
                    if index not in self._pools:
                        self._pools[index] = self._pool_class.from_url(
                            self._servers[index], **self._pool_options
                        )
                    client = self._client(connection_pool=self._pools[index])
                    self._clients[index] = client
        return client

    def count_and_get_many(
        self, counter: str, *, timeout: int, keys: list[str]
    ) -> tuple[int, dict[str, Any]]:
        client = self.get_client(counter, write=True)
        if self._count_script is None:
            self._count_script = client.register_script(_COUNT_AND_GET_LUA)
        # One command, where a pipeline of three costs redis-py twice the CPU.
        used, *rest = self._count_script(keys=[counter, *keys], args=[timeout], client=client)
        values = {}
        for key, raw in zip(keys, rest[0] if rest else [], strict=True):
            if raw is not None:
                values[key] = self._serializer.loads(raw)
        return int(used), values


class RedisCache(DjangoRedisCache):
    """`CACHES` backend: `tradingrobot.cache.RedisCache`, configured as Django's RedisCache."""

    @cached_property
    def _cache(self) -> SharedRedisCacheClient:
        # redis-py's pools notice a fork (gunicorn workers) and reconnect in the child.
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            client = _shared.get(key)
            if client is None:
                client = _shared[key] = SharedRedisCacheClient(self._servers, **self._options)
        return client

    def count_and_get_many(
        self, counter: str, *, timeout: int, keys: list[str]
    ) -> tuple[int, dict[str, Any]]:
        """Count one hit in a fixed-window counter (created at 0, expiring after `timeout`
        seconds) and read `keys`, in one round trip: the rate limit's count and the version
        stamps a cached answer is checked against (tradingrobot.api.throttling)."""
        counter_key = self.make_and_validate_key(counter)
        names = {self.make_and_validate_key(key): key for key in keys}
        used, values = self._cache.count_and_get_many(
            counter_key, timeout=timeout, keys=list(names)
        )
        return used, {names[key]: value for key, value in values.items()}
