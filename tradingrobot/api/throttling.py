"""Per-key rate limiting that never turns a Redis outage into a 500."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCacheClient
from rest_framework.throttling import BaseThrottle

from trading.models import ApiKey

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_last_warning = 0.0


def parse_rate(rate: str | None) -> tuple[int, int] | None:
    """ "1200/minute" -> (1200, 60); empty -> None (no limit)."""
    if not rate:
        return None
    count, _, period = rate.partition("/")
    return int(count), PERIODS[period.strip()[0].lower()]


class KeyRateThrottle(BaseThrottle):
    """`API_THROTTLE_RATE` requests per API key, per session user, or per client IP.

    A fixed-window counter in the cache (Redis): one counter per identity and window, so a
    request costs one round trip, not a read-modify-write of a timestamp list as DRF's
    SimpleRateThrottle does. If the cache fails, the request is let through and the failure
    logged (at most every 10 s): a rate limit is not worth an outage.
    """

    def __init__(self) -> None:
        self._wait: float | None = None

    def ident_for(self, request) -> str:
        if isinstance(request.auth, ApiKey):
            return f"key:{request.auth.pk}"  # the key's random id: never reused
        user = request.user
        if user is not None and user.is_authenticated and getattr(user, "pk", None):
            return f"user:{user.pk}"
        return f"ip:{self.get_ident(request)}"

    def allow_request(self, request, view) -> bool:
        limit = parse_rate(settings.API_THROTTLE_RATE)
        if limit is None:
            return True
        count, period = limit
        now = time.time()
        window = int(now // period)
        key = f"throttle:{self.ident_for(request)}:{period}:{window}"
        try:
            used = _increment(key, timeout=period + 1)
        except Exception:  # noqa: BLE001 - any cache failure: fail open
            _warn_cache_down()
            return True
        if used > count:
            self._wait = (window + 1) * period - now
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


def _increment(key: str, *, timeout: int) -> int:
    """Count one request in the window's counter: one Redis round trip (SET NX + INCR in a
    pipeline) on the Redis cache, the portable add/incr pair on any other backend."""
    redis_cache = getattr(cache, "_cache", None)
    if isinstance(redis_cache, RedisCacheClient):
        full_key = cache.make_and_validate_key(key)
        pipe = redis_cache.get_client(full_key, write=True).pipeline(transaction=False)
        pipe.set(full_key, 0, ex=timeout, nx=True)
        pipe.incr(full_key)
        return int(pipe.execute()[1])
    if cache.add(key, 0, timeout=timeout):
        return cache.incr(key)
    try:
        return cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=timeout)
        return 1


def _warn_cache_down() -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning > 10:
        _last_warning = now
        logger.warning("throttling skipped: the cache is unavailable", exc_info=True)
