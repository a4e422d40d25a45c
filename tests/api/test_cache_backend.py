"""tradingrobot.cache.RedisCache: Django's Redis cache, plus the one-round-trip count-and-read
that every API request makes (rate limit + version stamps), on a real Redis of the test's own."""

from __future__ import annotations

import threading

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.conftest import PrivateRedis
from tradingrobot.cache import RedisCache


@pytest.fixture
def redis_server(tmp_path):
    server = PrivateRedis(tmp_path / "redis")
    yield server
    server.stop()


def _backend(url: str) -> RedisCache:
    return RedisCache(url, {"KEY_PREFIX": "t", "OPTIONS": {"socket_timeout": 1}})


def test_count_and_get_many_counts_a_window_and_reads_keys(redis_server):
    backend = _backend(redis_server.url)
    backend.set("stamp", "abc", timeout=None)
    backend.set("number", 7, timeout=None)
    assert backend.count_and_get_many("window", timeout=60, keys=["stamp", "missing"]) == (
        1,
        {"stamp": "abc"},
    )
    assert backend.count_and_get_many("window", timeout=60, keys=["number"]) == (2, {"number": 7})
    assert backend.count_and_get_many("window", timeout=60, keys=[]) == (3, {})
    assert backend.get("window") == 3  # an ordinary counter for the rest of Django
    raw = backend._cache.get_client(write=True)
    assert 0 < raw.ttl(backend.make_key("window")) <= 60  # the window expires


def test_count_and_get_many_from_many_threads_counts_every_call(redis_server):
    backend = _backend(redis_server.url)
    threads = [
        threading.Thread(
            target=lambda: [backend.count_and_get_many("w", timeout=60, keys=[]) for _ in range(50)]
        )
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert backend.count_and_get_many("w", timeout=60, keys=[])[0] == 401


def test_count_and_get_many_recovers_after_redis_restarts(redis_server):
    """A restarted Redis has dropped the kept connection and forgotten the script; a call may
    fail once (the rate limit then lets the request through), the next one works again."""
    backend = _backend(redis_server.url)
    assert backend.count_and_get_many("w", timeout=60, keys=[])[0] == 1
    redis_server.stop()
    with pytest.raises(RedisConnectionError):
        backend.count_and_get_many("w", timeout=60, keys=[])
    redis_server.restart()
    try:
        backend.count_and_get_many("w", timeout=60, keys=[])
    except RedisConnectionError:
        pass  # a connection kept from before the restart
    backend.set("stamp", "new", timeout=None)
    assert backend.count_and_get_many("w2", timeout=60, keys=["stamp"]) == (1, {"stamp": "new"})


def test_backends_configured_alike_share_one_client():
    first = RedisCache("redis://127.0.0.1:6399/3", {"OPTIONS": {"socket_timeout": 1}})
    second = RedisCache("redis://127.0.0.1:6399/3", {"OPTIONS": {"socket_timeout": 1}})
    other = RedisCache("redis://127.0.0.1:6399/4", {"OPTIONS": {"socket_timeout": 1}})
    assert first._cache is second._cache  # one pool for every thread's backend
    assert first._cache.get_client() is first._cache.get_client()
    assert other._cache is not first._cache
