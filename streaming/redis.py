from __future__ import annotations

from functools import cache

import redis
from django.conf import settings

SEQ_KEY = "trp:stream:seq"


@cache
def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


def next_seq() -> int:
    """The stream's next sequence number, shared by every process through Redis."""
    return int(client().incr(SEQ_KEY))
