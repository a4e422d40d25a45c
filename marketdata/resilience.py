"""Retry with exponential backoff and jitter, and a circuit breaker per provider.

Within one collection a failing call is retried a few times (full-jitter exponential backoff,
capped). After MARKETDATA_BREAKER_THRESHOLD consecutive failed calls the breaker opens: the
provider is not called at all until the cooldown ends, and each re-opening doubles the cooldown
(with jitter, capped at MARKETDATA_BREAKER_MAX_COOLDOWN_SECONDS). After the cooldown one call is
let through (half-open); success closes the breaker, failure re-opens it. The state lives in the
database (ProviderBreaker), so worker restarts keep it and it does not depend on Redis.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from django.conf import settings
from django.utils import timezone

from marketdata.models import ProviderBreaker

logger = logging.getLogger(__name__)
T = TypeVar("T")


def backoff_delay(
    attempt: int, *, base: float, cap: float, rng: random.Random | None = None
) -> float:
    """Full-jitter backoff: uniform in [0, min(cap, base * 2**attempt)]."""
    return (rng or random).uniform(0, min(cap, base * 2**attempt))


def call_with_retry(
    fn: Callable[[], T],
    *,
    attempts: int | None = None,
    base: float | None = None,
    cap: float | None = None,
    sleep: Callable[[float], None] | None = None,
) -> T:
    """`fn()`, retried on any Exception up to `attempts` times in all; the last error is raised."""
    attempts = attempts or settings.MARKETDATA_RETRY_ATTEMPTS
    base = settings.MARKETDATA_RETRY_BASE_SECONDS if base is None else base
    cap = settings.MARKETDATA_RETRY_MAX_SECONDS if cap is None else cap
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as exc:
            if attempt == attempts - 1:
                raise
            delay = backoff_delay(attempt, base=base, cap=cap)
            logger.info("provider call failed (%s); retry %d in %.2fs", exc, attempt + 1, delay)
            (sleep or time.sleep)(delay)
    raise AssertionError("unreachable")


class BreakerOpen(Exception):
    def __init__(self, provider: str, until: datetime) -> None:
        super().__init__(f"circuit breaker for {provider} is open until {until.isoformat()}")
        self.until = until


def _state(provider: str) -> ProviderBreaker:
    return ProviderBreaker.objects.get_or_create(provider=provider)[0]


def breaker_check(*, provider: str, now: datetime | None = None) -> None:
    """Raise BreakerOpen while the provider's cooldown runs."""
    now = now or timezone.now()
    until = (
        ProviderBreaker.objects.filter(provider=provider)
        .values_list("opened_until", flat=True)
        .first()
    )
    if until and until > now:
        raise BreakerOpen(provider, until)


def breaker_record_success(*, provider: str, now: datetime | None = None) -> None:
    now = now or timezone.now()
    reopened = ProviderBreaker.objects.filter(provider=provider, opened_until__isnull=False)
    if reopened.update(failures=0, opens=0, opened_until=None, last_success_at=now):
        _alert_breaker(provider, "circuit_breaker.recovered", now, "info", "answers again")
        return
    updated = ProviderBreaker.objects.filter(provider=provider).update(
        failures=0, opens=0, opened_until=None, last_success_at=now
    )
    if not updated:
        ProviderBreaker.objects.get_or_create(provider=provider, defaults={"last_success_at": now})


def breaker_record_failure(*, provider: str, error: str, now: datetime | None = None) -> bool:
    """Count a failed call; returns True if this failure opened the breaker."""
    now = now or timezone.now()
    state = _state(provider)
    state.failures += 1
    state.last_error = error[:1000]
    state.last_failure_at = now
    opened = state.failures >= settings.MARKETDATA_BREAKER_THRESHOLD
    if opened:
        cooldown = min(
            settings.MARKETDATA_BREAKER_COOLDOWN_SECONDS * 2**state.opens,
            settings.MARKETDATA_BREAKER_MAX_COOLDOWN_SECONDS,
        )
        cooldown *= random.uniform(0.8, 1.2)
        state.opens += 1
        state.opened_until = now + timedelta(seconds=cooldown)
        # After the cooldown one call is let through; a single further failure re-opens.
        state.failures = settings.MARKETDATA_BREAKER_THRESHOLD - 1
        logger.warning(
            "market-data provider %s failing (%s): breaker open for %.0fs",
            provider,
            error,
            cooldown,
        )
    state.save()
    if opened:
        _alert_breaker(
            provider,
            "circuit_breaker.open",
            state.opened_until,
            "warning",
            f"is failing ({state.last_error[:200]}); not called until "
            f"{state.opened_until:%H:%M:%S} UTC",
        )
    return opened


def _alert_breaker(provider: str, kind: str, when: datetime, severity: str, text: str) -> None:
    from streaming import events
    from streaming.publish import publish

    title = "open" if kind.endswith("open") else "recovered"
    publish(
        events.ALERT,
        {
            "id": f"{kind}:{provider}:{events.iso_utc(when)}",
            "kind": kind,
            "severity": severity,
            "title": f"Market-data circuit breaker {title}: {provider}",
            "text": f"Provider {provider} {text}.",
            "data": {"provider": provider},
        },
    )


def breaker_state(*, provider: str, now: datetime | None = None) -> dict:
    """For /health: closed, open (with until) or half_open, plus the last error."""
    now = now or timezone.now()
    state = ProviderBreaker.objects.filter(provider=provider).first()
    if state is None:
        return {"state": "closed", "failures": 0, "open_until": None, "last_error": ""}
    if state.opened_until and state.opened_until > now:
        name = "open"
    elif state.opened_until:
        name = "half_open"
    else:
        name = "closed"
    return {
        "state": name,
        "failures": state.failures,
        "open_until": state.opened_until,
        "last_error": state.last_error if name != "closed" or state.failures else "",
    }
