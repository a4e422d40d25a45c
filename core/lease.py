"""A cluster-wide lease in Redis: exactly one holder of a named right (the Telegram poller, the
stream connections of one broker account) across every process that shares the Redis.

`SET key token NX PX ms` takes it; renewal is a compare-and-PEXPIRE in Lua (only the holder's own
token extends it), and so is the release (compare-and-DEL), so a process whose lease ran out can
never extend or delete the next holder's.
"""

from __future__ import annotations

import secrets

import redis
from django.conf import settings

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def _client() -> redis.Redis:
    # Short timeouts: a holder that cannot reach Redis must learn it well within the lease.
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1, socket_connect_timeout=1)


class Lease:
    """The right named `key`, held for `seconds` after each successful acquire or renew."""

    def __init__(self, key: str, *, seconds: float, client: redis.Redis | None = None) -> None:
        self.key = key
        self.token = secrets.token_hex(8)
        self.ms = max(1, int(seconds * 1000))
        self._redis = client

    @property
    def client(self) -> redis.Redis:
        if self._redis is None:
            self._redis = _client()
        return self._redis

    def acquire(self) -> bool:
        """Take the lease if nobody holds it."""
        return bool(self.client.set(self.key, self.token, nx=True, px=self.ms))

    def renew(self) -> bool:
        """Extend the lease if this process still holds it (False: it was lost)."""
        return bool(self.client.eval(_RENEW, 1, self.key, self.token, self.ms))

    def acquire_or_renew(self) -> bool:
        return self.renew() or self.acquire()

    def holder(self) -> str | None:
        value = self.client.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    def release(self) -> None:
        """Give the lease up (only if still ours), so a standby need not wait for it to expire."""
        self.client.eval(_RELEASE, 1, self.key, self.token)
