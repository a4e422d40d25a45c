"""HTTP for the experimental Robinhood broker: one guarded requests session (core.http: timeout,
total deadline, body size cap, no cross-origin redirect), a minimum interval between calls
across processes, Retry-After and a persisted cool-down after a 429, and Robinhood's answers
mapped once to our BrokerError (permanent: a 4xx refusal; temporary: timeouts, 5xx, 429,
malformed answers).

Robinhood locks accounts for hours after bursts of calls (users report 12-hour lockouts), so the
pacing and cool-down apply to every call, logins included, and the cool-down is a database
column: a restarted worker does not start hammering again.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urljoin

import requests
from django.conf import settings
from django.db.models import Case, F, Q, Value, When
from django.utils import timezone

from core.http import guarded_session, origin
from trading.brokers.base import BrokerError

logger = logging.getLogger("trading.brokers.robinhood")

# The headers robin-stocks sends with every call (robin_stocks/robinhood/globals.py).
HEADERS = {
    "Accept": "*/*",
    "Accept-Encoding": "gzip,deflate,br",
    "Accept-Language": "en-US,en;q=1",
    "X-Robinhood-API-Version": "1.431.4",
    "User-Agent": "*",
}
MAX_PAGES = 20  # a paginated listing stops here (20 x Robinhood's page of 100 orders)
PACE_KEY = "robinhood:pace"


_sessions = threading.local()


def _thread_session(base_url: str, timeout: float, deadline: float, max_bytes: int):
    """One guarded session per thread and configuration: a broker is built per service call,
    and a fresh session per call would mean a fresh TCP and TLS handshake per call."""
    key = (base_url, timeout, deadline, max_bytes)
    cache = getattr(_sessions, "by_key", None)
    if cache is None:
        cache = _sessions.by_key = {}
    session = cache.get(key)
    if session is None:
        session = guarded_session(timeout=timeout, deadline=deadline, max_bytes=max_bytes)
        session.headers.update(HEADERS)
        cache[key] = session
    return session


class Unauthorized(BrokerError):
    """A 401: the access token expired or was revoked. The auth layer refreshes and retries."""

    def __init__(self, message: str) -> None:
        super().__init__(message, permanent=False, code="broker_auth_expired")


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds (delta-seconds or an HTTP date), or None."""
    value = (response.headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


def _message(body: Any, fallback: str) -> str:
    """Robinhood's error text: `detail`, `non_field_errors`, or the first field's errors."""
    if isinstance(body, dict):
        for key in ("detail", "error_description", "error", "non_field_errors"):
            value = body.get(key)
            if value:
                return str(value[0] if isinstance(value, list) else value)[:500]
        for key, value in body.items():
            if isinstance(value, list) and value:
                return f"{key}: {value[0]}"[:500]
    return fallback


class RobinhoodHTTP:
    """The session and the rules every Robinhood call follows. `login` is the one login row
    (trading.models.RobinhoodLogin); its cool-down is read before, and written after, calls."""

    _local_lock = threading.Lock()
    _local_next = 0.0  # this process's pacing, when Redis is unreachable

    def __init__(self) -> None:
        self.base_url = settings.ROBINHOOD_API_URL.rstrip("/") + "/"
        self.session = _thread_session(
            self.base_url,
            settings.ROBINHOOD_TIMEOUT_SECONDS,
            min(settings.OUTBOUND_HTTP_DEADLINE_SECONDS, 3 * settings.ROBINHOOD_TIMEOUT_SECONDS),
            settings.OUTBOUND_HTTP_MAX_BYTES,
        )

    def url(self, path_or_url: str) -> str:
        """An absolute URL on the API's origin. A URL Robinhood handed us (a `next` page, an
        instrument) must be on the same origin: the bearer token goes nowhere else."""
        url = urljoin(self.base_url, path_or_url)
        if origin(url) != origin(self.base_url):
            raise BrokerError(
                f"Robinhood answered with a link to another origin ({origin(url)[1]})",
                permanent=False,
                code="broker_bad_response",
            )
        return url

    # -- pacing and cool-down ----------------------------------------------------------------

    def check_cooldown(self) -> None:
        from trading.models import RobinhoodLogin

        until = RobinhoodLogin.objects.filter(pk=1).values_list("cooldown_until", flat=True).first()
        if until is not None and until > timezone.now():
            left = (until - timezone.now()).total_seconds()
            raise BrokerError(
                f"Robinhood cool-down after a rate limit or refused login: {left:.0f} s left",
                permanent=False,
                code="rate_limited",
            )

    def pace(self) -> None:
        """Wait until this call may go: one call per ROBINHOOD_MIN_INTERVAL_SECONDS across all
        processes (a Redis key that expires after the interval), or per process without Redis."""
        interval = settings.ROBINHOOD_MIN_INTERVAL_SECONDS
        if interval <= 0:
            return
        deadline = time.monotonic() + max(5 * interval, 10.0)
        try:
            from streaming.redis import client, prefix

            redis, key = client(), f"{prefix()}{PACE_KEY}"
            while not redis.set(key, "1", nx=True, px=max(1, int(interval * 1000))):
                if time.monotonic() > deadline:
                    raise BrokerError(
                        "Robinhood call queue is full (pacing)",
                        permanent=False,
                        code="rate_limited",
                    )
                wait = redis.pttl(key)
                time.sleep(min(max(wait, 10), interval * 1000) / 1000)
            return
        except BrokerError:
            raise
        except Exception as exc:  # noqa: BLE001 - Redis down: pace this process alone
            logger.warning("Robinhood pacing without Redis (%s)", exc.__class__.__name__)
        with self._local_lock:
            now = time.monotonic()
            wait = RobinhoodHTTP._local_next - now
            RobinhoodHTTP._local_next = max(now, RobinhoodHTTP._local_next) + interval
        if wait > 0:
            time.sleep(wait)

    def _start_cooldown(self, seconds: float | None, reason: str) -> float:
        """Persist a cool-down (Retry-After, else doubling per consecutive 429)."""
        from trading.models import RobinhoodLogin, RobinhoodLoginState

        login, _ = RobinhoodLogin.objects.get_or_create(pk=1)
        login.rate_limit_strikes += 1
        if seconds is None:
            seconds = settings.ROBINHOOD_COOLDOWN_SECONDS * 2 ** (login.rate_limit_strikes - 1)
        seconds = min(max(seconds, 1.0), settings.ROBINHOOD_MAX_COOLDOWN_SECONDS)
        login.cooldown_until = timezone.now() + timedelta(seconds=seconds)
        login.state = RobinhoodLoginState.RATE_LIMITED
        login.detail = f"{reason}; no calls until {login.cooldown_until:%Y-%m-%d %H:%M:%S} UTC"
        login.save(
            update_fields=["rate_limit_strikes", "cooldown_until", "state", "detail", "updated_at"]
        )
        logger.warning("Robinhood rate limit: %s", login.detail)
        return seconds

    def _succeeded(self) -> None:
        from trading.models import RobinhoodLogin, RobinhoodLoginState

        # One UPDATE that matches nothing in the common case (nothing to clear).
        limited = Q(state=RobinhoodLoginState.RATE_LIMITED)
        RobinhoodLogin.objects.filter(Q(rate_limit_strikes__gt=0) | limited, pk=1).update(
            rate_limit_strikes=0,
            state=Case(When(limited, then=Value(RobinhoodLoginState.OK)), default=F("state")),
            detail=Case(When(limited, then=Value("")), default=F("detail")),
        )

    # -- calls -------------------------------------------------------------------------------

    def call(
        self,
        method: str,
        path_or_url: str,
        *,
        action: str,
        authorization: str | None = None,
        params: dict | None = None,
        data: dict | None = None,
        json_body: dict | None = None,
        expect_error_body: bool = False,
    ) -> Any:
        """One call; its JSON (None for an empty body). Raises BrokerError (Unauthorized on 401).

        `expect_error_body`: a 400/401/403 answer is returned as JSON instead of raised (the
        login endpoint answers refusals and challenges that way, as robin-stocks reads them).
        """
        url = self.url(path_or_url)
        headers = {"Authorization": authorization} if authorization else {}
        waited = False
        while True:
            self.check_cooldown()
            self.pace()
            try:
                response = self.session.request(
                    method, url, params=params, data=data, json=json_body, headers=headers
                )
            except requests.RequestException as exc:
                raise BrokerError(
                    f"Robinhood unreachable during {action}: {exc.__class__.__name__}: {exc}",
                    permanent=False,
                    code="broker_unavailable",
                ) from exc
            if response.status_code != 429:
                break
            # A 429 is refused before any processing: repeating even a POST is safe.
            retry_after = _retry_after(response)
            max_wait = settings.ROBINHOOD_RETRY_AFTER_MAX_WAIT_SECONDS
            if not waited and retry_after is not None and retry_after <= max_wait:
                logger.info("Robinhood 429 on %s; retrying after %.1f s", action, retry_after)
                time.sleep(retry_after)
                waited = True
                continue
            seconds = self._start_cooldown(retry_after, f"429 on {action}")
            raise BrokerError(
                f"Robinhood rate limit during {action}; cooling down for {seconds:.0f} s",
                permanent=False,
                code="rate_limited",
            )
        body = self._json(response, action)
        status = response.status_code
        if status < 300:
            self._succeeded()
            return body
        if expect_error_body and status in (400, 401, 403):
            return body
        raise self._error(status, body, action)

    def paginate(
        self, path: str, *, action: str, authorization: str, params: dict | None = None
    ) -> list[dict]:
        """`results` of every page (following `next` on the same origin), MAX_PAGES at most."""
        rows: list[dict] = []
        url: str | None = path
        for _page in range(MAX_PAGES):
            body = self.call("GET", url, action=action, authorization=authorization, params=params)
            if not isinstance(body, dict) or not isinstance(body.get("results"), list):
                raise BrokerError(
                    f"Robinhood answered {action} without a results list",
                    permanent=False,
                    code="broker_bad_response",
                )
            rows.extend(r for r in body["results"] if isinstance(r, dict))
            url, params = body.get("next"), None  # `next` carries the query already
            if not url:
                return rows
        logger.warning("Robinhood %s: more than %d pages; the rest is not read", action, MAX_PAGES)
        return rows

    @staticmethod
    def _json(response: requests.Response, action: str) -> Any:
        if not response.content.strip():
            return None
        try:
            return json.loads(response.content)
        except ValueError as exc:
            raise BrokerError(
                f"Robinhood answered {action} with malformed JSON (HTTP {response.status_code})",
                permanent=False,
                code="broker_bad_response",
            ) from exc

    @staticmethod
    def _error(status: int, body: Any, action: str) -> BrokerError:
        message = _message(body, f"HTTP {status}")
        if status == 401:
            return Unauthorized(f"Robinhood refused the token during {action}: {message}")
        if status >= 500 or status == 408:
            return BrokerError(
                f"Robinhood error {status} during {action}: {message}",
                permanent=False,
                code="broker_unavailable",
            )
        if status == 404:
            return BrokerError(message, permanent=True, code="order_not_found")
        lowered = message.lower()
        if "buying power" in lowered or "insufficient" in lowered:
            return BrokerError(message, permanent=True, code="insufficient_buying_power")
        if action == "cancel_order":
            return BrokerError(message, permanent=True, code="order_not_cancelable")
        if status == 403:
            return BrokerError(
                f"Robinhood refused {action} (403): {message}",
                permanent=True,
                code="broker_auth_error",
            )
        return BrokerError(message, permanent=True, code="broker_validation_error")
