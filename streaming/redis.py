"""Redis access for the stream: the per-stream sequence numbers and the one pub/sub channel.

Every key and channel carries CHANNELS_PREFIX: pub/sub channels are global across Redis DB
numbers, so two installations (or test runs) sharing a Redis server must not hear each other.
"""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings

# For each event: INCR its stream's sequence and splice the number into its envelope; then
# PUBLISH them all as one message (streaming.publish: the wire format), in one atomic step, so
# that the order of sequence numbers is the order in which every subscriber receives the
# messages, even with many publishing processes. KEYS are the events' sequence keys, then the
# channel; ARGV holds each envelope as two parts, up to `"seq":` and the rest. Several events in
# one call cost one round trip (an order's fill publishes three).
_PUBLISH_LUA = """
local channel = KEYS[#KEYS]
local seqs, parts = {}, {}
for i = 1, #KEYS - 1 do
  local seq = redis.call('INCR', KEYS[i])
  parts[i] = ARGV[2 * i - 1] .. seq .. ARGV[2 * i]
  seqs[i] = seq
end
redis.call('PUBLISH', channel, table.concat(parts))
return seqs
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


def publish_many_with_seq(messages: list[tuple[str, bytes, bytes]]) -> list[int]:
    """Publish several `(stream, head, tail)` messages in order, in one round trip."""
    if not messages:
        return []
    keys = [seq_key(stream) for stream, _head, _tail in messages] + [stream_channel()]
    args = [part for _stream, head, tail in messages for part in (head, tail)]
    # redis-py's Script reloads itself after NOSCRIPT (e.g. after a Redis restart).
    return [int(seq) for seq in _publish_script()(keys=keys, args=args)]
