"""One log line per Redis outage, not a traceback per failed call.

Every place that may fail on Redis and carries on without it (the rate limit, the response
cache's stamps, event publishing, Celery enqueues, auth-failure counting) reports here. The
first failure of an outage is logged with its traceback; later ones are only counted, and a
summary ("still down: N failed calls in the last S s, by place") is logged at most every
SUMMARY_SECONDS while it lasts. The first success after failures logs that Redis is back. A
10-second outage under load used to write ~2,000 tracebacks (4 MB).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

logger = logging.getLogger("tradingrobot.redis")

SUMMARY_SECONDS = 10.0
T = TypeVar("T")

_lock = threading.Lock()
_down_since: float | None = None
_last_summary = 0.0
_failures: Counter[str] = Counter()
_total = 0


def failure(what: str, exc: BaseException | None = None) -> None:
    """A call to Redis (`what`: the place, e.g. "rate limit") failed; the caller carries on."""
    global _down_since, _last_summary, _total
    now = time.monotonic()
    with _lock:
        first = _down_since is None
        if first:
            _down_since = _last_summary = now
            _failures.clear()
            _total = 0
        _failures[what] += 1
        _total += 1
        summary, count, window = None, 0, 0.0
        if not first and now - _last_summary >= SUMMARY_SECONDS:
            summary = ", ".join(f"{place} {n}" for place, n in _failures.most_common())
            count = sum(_failures.values())
            window = now - _last_summary
            _last_summary = now
            _failures.clear()
    if first:
        logger.warning(
            "Redis unavailable (%s): carrying on without it; further failures are summarised "
            "every %d s",
            what,
            SUMMARY_SECONDS,
            exc_info=exc if exc is not None else True,
        )
    elif summary:
        logger.warning(
            "Redis still unavailable after %.0f s: %s failed call(s) in the last %.0f s (%s)",
            now - (_down_since or now),
            count,
            window,
            summary,
        )


def recovered() -> None:
    """A call to Redis succeeded. Cheap when nothing was down (one global read)."""
    global _down_since
    if _down_since is None:
        return
    with _lock:
        if _down_since is None:
            return
        lasted = time.monotonic() - _down_since
        total = _total
        _down_since = None
        _failures.clear()
    logger.warning("Redis is back after %.1f s (%d failed call(s))", lasted, total)


def is_down() -> bool:
    return _down_since is not None


def redis_call(what: str, fn: Callable[..., T], *args: Any, default: Any = None, **kwargs: Any):
    """`fn(*args, **kwargs)`, or `default` (the failure reported) if it raises."""
    try:
        result = fn(*args, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every Redis failure here is survivable
        failure(what, exc)
        return default
    recovered()
    return result
