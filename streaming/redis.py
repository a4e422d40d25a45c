"""Redis access for the stream: the per-stream sequence numbers and the one pub/sub channel.

Every key and channel carries CHANNELS_PREFIX: pub/sub channels are global across Redis DB
numbers, so two installations (or test runs) sharing a Redis server must not hear each other.
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings

# INCR the stream's sequence and PUBLISH the envelope in one atomic step, so that the order of
# sequence numbers is the order in which every subscriber receives the messages, even with many
# publishing processes. ARGV[1] is the envelope up to `"seq":`, ARGV[2] the rest.
_PUBLISH_LUA = """
local seq = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', KEYS[2], ARGV[1] .. seq .. ARGV[2])
return seq
"""


def prefix() -> str:
    return settings.CHANNEL_LAYERS["default"]["CONFIG"].get("prefix", "trp")


def stream_channel() -> str:
    """The pub/sub channel every web process subscribes to once."""
    return f"{prefix()}:stream"


def seq_key(stream: str) -> str:
    return f"{prefix()}:seq:{stream}"


@cache
def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


@cache
def _publish_script():
    return client().register_script(_PUBLISH_LUA)


def publish_with_seq(stream: str, head: bytes, tail: bytes) -> int:
    """Publish `head + seq + tail` on the stream channel; returns the stream's new seq."""
    # redis-py's Script reloads itself after NOSCRIPT (e.g. after a Redis restart).
    return int(_publish_script()(keys=[seq_key(stream), stream_channel()], args=[head, tail]))
