"""Per-key rate limiting that never turns a Redis outage into a 500."""

from __future__ import annotations

import logging
import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

from trading.models import ApiKey
from tradingrobot import redis_outage

logger = logging.getLogger(__name__)

PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


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
    SimpleRateThrottle does; a cached read's version stamps ride along in it. If the cache
    fails, the request is let through and the failure logged (at most every 10 s): a rate
    limit is not worth an outage.
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
        # A cached GET checks its answer against version stamps right after this: they come
        # back in the same round trip (tradingrobot.api.cache.serve picks them up).
        stamp_keys = getattr(view, "stamp_keys", None)
        read_ahead = stamp_keys() if stamp_keys is not None and request.method == "GET" else []
        try:
            used, values = _count(key, timeout=period + 1, read_ahead=read_ahead)
        except Exception as exc:  # noqa: BLE001 - any cache failure: fail open
            redis_outage.failure("rate limit", exc)
            return True
        redis_outage.recovered()
        if read_ahead:
            request.read_ahead = values
        if used > count:
            self._wait = (window + 1) * period - now
            return False
        return True

    def wait(self) -> float | None:
        return self._wait


def _count(key: str, *, timeout: int, read_ahead: list[str]) -> tuple[int, dict]:
    """Count one request in the window's counter and read the `read_ahead` keys: one Redis
    round trip on our Redis cache (tradingrobot.cache), the portable calls on any other."""
    if hasattr(cache, "count_and_get_many"):
        return cache.count_and_get_many(key, timeout=timeout, keys=read_ahead)
    if cache.add(key, 0, timeout=timeout):
        used = cache.incr(key)
    else:
        try:
            used = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=timeout)
            used = 1
    return used, cache.get_many(read_ahead) if read_ahead else {}
