"""What a benchmark leaves in a Redis it did not start (event sequences, cache stamps) is
deleted afterwards: every bench run keys its data under a prefix of its own."""

from __future__ import annotations


def forget_redis_keys(url: str, prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()
