"""Response caching for the market-data API, which must never fail because Redis did.

Django's RedisCache raises on connection errors; every cache access here goes through
`_safely`, which logs and swallows them, so a Redis outage only means answers come from the
database. Invalidation is by a per-symbol version stamp that is part of every cache key and is
replaced (after commit) whenever bars for that symbol land: old entries are simply never read
again and expire by their TTL (300 s at most).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from django.core.cache import cache

from tradingrobot.redis_outage import redis_call

logger = logging.getLogger(__name__)

RESPONSE_TTL_SECONDS = 300
_VERSION_KEY = "md:ver:{}"
_MISS = object()


def _safely(what: str, fn: Callable[[], Any], default: Any = None) -> Any:
    # A cache outage degrades to the database, never a 500; it is logged once per outage.
    return redis_call(f"market-data cache {what}", fn, default=default)


def version_keys(symbols: Iterable[str]) -> list[str]:
    """The cache keys of these symbols' stamps (the API's whole-answer cache reads them too)."""
    return [_VERSION_KEY.format(s) for s in symbols]


def versions(symbols: Iterable[str]) -> dict[str, str] | None:
    """Current version stamp per symbol (created when missing), or None if the cache is down."""
    from tradingrobot.api.cache import stamps

    symbols = list(symbols)
    found = stamps(version_keys(symbols))
    return None if found is None else dict(zip(symbols, found, strict=True))


def versions_bump(symbols: Iterable[str]) -> None:
    """Invalidate every cached response that involves these symbols."""
    stamp = str(time.time_ns())
    _safely(
        "invalidate",
        lambda: cache.set_many({_VERSION_KEY.format(s): stamp for s in symbols}, timeout=None),
    )


def response_key(name: str, symbols: Iterable[str], params: dict[str, Any]) -> str | None:
    """A cache key for one response, or None when the cache is unavailable."""
    symbols = sorted(symbols)
    stamps = versions(symbols)
    if stamps is None:
        return None
    raw = repr((name, [(s, stamps[s]) for s in symbols], sorted(params.items())))
    return "md:resp:" + hashlib.sha1(raw.encode()).hexdigest()


def get(key: str | None) -> Any:
    """The cached value, or `_MISS` (test with `is_miss`)."""
    if key is None:
        return _MISS
    return _safely("read", lambda: cache.get(key, _MISS), _MISS)


def is_miss(value: Any) -> bool:
    return value is _MISS


def set(key: str | None, value: Any) -> None:  # noqa: A001 - mirrors the cache API
    if key is not None:
        _safely("write", lambda: cache.set(key, value, timeout=RESPONSE_TTL_SECONDS))


def cached(name: str, symbols: Iterable[str], params: dict[str, Any], build: Callable[[], Any]):
    """The cached value for (name, symbols' versions, params), built and stored on a miss."""
    symbols = list(symbols)
    key = response_key(name, symbols, params)
    value = get(key)
    if is_miss(value):
        value = build()
        set(key, value)
    return value


_FEED_KEY = "md:feed:{}"


def feed_success_set(symbol: str, at_epoch: float) -> None:
    """Remember the last successful collection of `symbol` (read on every API answer)."""
    _safely("feed write", lambda: cache.set(_FEED_KEY.format(symbol), at_epoch, timeout=86_400))


def feed_success_get(symbols: list[str]) -> dict[str, float]:
    """Last successful collection per symbol (epoch seconds) the cache knows; may be partial."""
    keys = {_FEED_KEY.format(s): s for s in symbols}
    found = _safely("feed read", lambda: cache.get_many(list(keys)), {}) or {}
    return {keys[k]: float(v) for k, v in found.items()}
