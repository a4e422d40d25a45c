"""Failed authentications are counted per client IP and throttled (429).

Guessing keys costs a query and a hash per attempt; past AUTH_FAILURE_RATE failures in a window
from one address, every Bearer request from it that needs a key lookup answers 429 until the
window ends (keys already verified and cached in this process are not looked up again, so they
keep working). The address is REST_FRAMEWORK's NUM_PROXIES-aware identity
(TRUSTED_PROXY_COUNT): X-Forwarded-For is believed only through that many proxies, so rotating
it does not reset the count. If Redis is down, nothing is counted (fail open, logged by
tradingrobot.redis_outage).
"""

from __future__ import annotations

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework import exceptions
from rest_framework.throttling import BaseThrottle

from tradingrobot.redis_outage import redis_call


def _limit() -> tuple[int, int] | None:
    from tradingrobot.api.throttling import parse_rate

    return parse_rate(settings.AUTH_FAILURE_RATE)


def client_ip(request) -> str:
    return BaseThrottle().get_ident(request)


def _key(ip: str, period: int, now: float) -> str:
    return f"authfail:{ip}:{period}:{int(now // period)}"


def refuse_if_throttled(request) -> None:
    limit = _limit()
    if limit is None:
        return
    count, period = limit
    now = time.time()
    used = redis_call("auth failure count", cache.get, _key(client_ip(request), period, now))
    if used is not None and used >= count:
        raise exceptions.Throttled(wait=period - now % period)


def failure_record(request) -> None:
    limit = _limit()
    if limit is None:
        return
    _count, period = limit
    key = _key(client_ip(request), period, time.time())

    def bump() -> None:
        if not cache.add(key, 1, timeout=period + 1):
            try:
                cache.incr(key)
            except ValueError:  # expired in between
                cache.add(key, 1, timeout=period + 1)

    redis_call("auth failure count", bump)
