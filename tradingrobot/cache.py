"""Django's Redis cache backend with one redis-py client per process, shared by every thread,
and `count_and_get_many`, the one cache call every API request makes.

Django's backend wraps its connection pool in a new `redis.Redis` on every cache call, and
redis-py (6+) rebuilds its table of response callbacks in that constructor: about 0.2 ms per
call, more than the round trip to a local Redis. A `redis.Redis` over a pool is thread-safe,
so one per pool serves the whole process.

Django also keeps one cache backend per thread, and under ASGI each request's sync code runs in
a fresh thread: with the stock backend every such request opened its own Redis connection.
Backends configured alike here share one client, and so one pool, across threads.

`count_and_get_many` counts a request in its rate-limit window and reads the version stamps of
a cached answer in one Lua command, and `set_many` without expiry (the stamps' writes) is one
MSET, both on connections kept for them (see `_take_connection`).
"""

from __future__ import annotations

import hashlib
import os
import threading
from typing import Any

from django.core.cache.backends.redis import RedisCache as DjangoRedisCache
from django.core.cache.backends.redis import RedisCacheClient
from django.utils.functional import cached_property
from redis.exceptions import NoScriptError

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
_COUNT_AND_GET_SHA = hashlib.sha1(_COUNT_AND_GET_LUA.encode()).hexdigest()


class SharedRedisCacheClient(RedisCacheClient):
    """Django's client, reusing one `redis.Redis` per connection pool."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}
        self._idle: list[Any] = []
        # A forked child (a gunicorn worker) must not use its parent's sockets.
        os.register_at_fork(after_in_child=self._idle.clear)

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
        args = (1 + len(keys), counter, *keys, timeout)
        try:
            reply = self._roundtrip("EVALSHA", _COUNT_AND_GET_SHA, *args)
        except NoScriptError:  # a restarted Redis forgot it: EVAL caches it again
            reply = self._roundtrip("EVAL", _COUNT_AND_GET_LUA, *args)
        used, *rest = reply
        values = {}
        for key, raw in zip(keys, rest[0] if rest else [], strict=True):
            if raw is not None:
                values[key] = self._serializer.loads(raw)
        return int(used), values

    def set_many(self, data: dict[str, Any], timeout: int | None) -> None:
        if timeout is not None:
            super().set_many(data, timeout)
            return
        # Keys without expiry are the API's version stamps, written on every saved order: one
        # MSET on a kept connection, not a MULTI/EXEC pipeline through the pool.
        self._roundtrip(
            "MSET",
            *(part for key, value in data.items() for part in (key, self._serializer.dumps(value))),
        )

    def _roundtrip(self, *command: Any) -> Any:
        """One command on a connection of our own (see _take_connection)."""
        connection = self._take_connection()
        try:
            connection.send_command(*command)
            reply = connection.read_response()
        except NoScriptError:
            self._idle.append(connection)  # a command error: the connection is fine
            raise
        except BaseException:
            connection.disconnect()
            raise
        self._idle.append(connection)
        return reply

    def _take_connection(self) -> Any:
        """A connection of our own for count_and_get_many, the one cache call on every API
        request. redis-py's pool checks a connection out with a fork check and a health check
        (five system calls) and hands it back under a lock; on this path that cost more than
        the round trip to Redis. A connection that fails is dropped, and the next call opens a
        new one; list.pop/append are atomic, so threads never share one."""
        try:
            return self._idle.pop()
        except IndexError:
            pool = self.get_client(write=True).connection_pool
            return pool.connection_class(**pool.connection_kwargs)


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
        # make_key, not make_and_validate_key: these keys are ours, and the validation (a
        # memcached habit) walks every character in Python on this per-request path.
        counter_key = self.make_key(counter)
        names = {self.make_key(key): key for key in keys}
        used, values = self._cache.count_and_get_many(
            counter_key, timeout=timeout, keys=list(names)
        )
        return used, {names[key]: value for key, value in values.items()}
