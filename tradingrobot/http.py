"""Outbound HTTP that cannot leak credentials, hang or eat memory: one adapter for every
requests session the project opens (the WordPress provider, the Alpaca broker and data client).

- **No cross-origin redirects**: a redirect to another scheme, host or port is refused
  (`CrossOriginRedirect`) instead of followed, so a header carrying credentials (WordPress's
  auth header, Alpaca's APCA-API-KEY-ID/SECRET) never reaches another host. requests itself only
  strips `Authorization`, and only on a host change.
- **A total deadline** per request (`deadline` seconds, connect to last byte): requests' timeout
  bounds each socket read, so a server trickling a byte every 2 s defeats a 3 s timeout.
- **A body size cap** (`max_bytes`): bodies are read in pieces and refused past the cap
  (`ResponseTooLarge`), and at once when Content-Length says so.

All three errors are `requests.RequestException`s, so callers handle them as the network errors
they already expect.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3 import exceptions as urllib3_exceptions

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
CHUNK = 64 * 1024


class CrossOriginRedirect(requests.RequestException):
    pass


class DeadlineExceeded(requests.Timeout):
    pass


class ResponseTooLarge(requests.RequestException):
    pass


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter with a default timeout, a total deadline and a body size cap, that
    refuses cross-origin redirects. Mount it on a session for http:// and https://."""

    def __init__(
        self,
        *,
        timeout: float,
        deadline: float | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        **kwargs: Any,
    ) -> None:
        self.timeout = timeout
        self.deadline = deadline if deadline is not None else 3 * timeout
        self.max_bytes = max_bytes
        super().__init__(**kwargs)

    def send(self, request, stream=False, timeout=None, **kwargs):  # type: ignore[override]
        started = time.monotonic()
        if timeout is None:
            timeout = self.timeout
        response = super().send(request, stream=True, timeout=timeout, **kwargs)
        try:
            if response.is_redirect or response.is_permanent_redirect:
                target = urljoin(request.url, response.headers.get("location", ""))
                if origin(target) != origin(request.url):
                    raise CrossOriginRedirect(
                        f"refused a redirect from {origin(request.url)[1]} to another origin "
                        f"({origin(target)[1]})",
                        request=request,
                        response=response,
                    )
            if not stream:
                response._content = self._read(response, started)
                response._content_consumed = True
        except BaseException:
            response.close()
            raise
        return response

    def _read(self, response, started: float) -> bytes:
        declared = response.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise ResponseTooLarge(
                f"response of {declared} bytes is larger than the {self.max_bytes}-byte cap",
                response=response,
            )
        raw = response.raw
        body = bytearray()
        while True:
            left = self.deadline - (time.monotonic() - started)
            if left <= 0:
                raise DeadlineExceeded(
                    f"no complete response within {self.deadline:g} s", response=response
                )
            _shorten_read_timeout(raw, left)
            try:
                # read1: whatever one socket read brings (read(n) would wait for all n bytes).
                piece = raw.read1(CHUNK, decode_content=True)
            except urllib3_exceptions.ReadTimeoutError as exc:
                if time.monotonic() - started >= self.deadline:
                    raise DeadlineExceeded(
                        f"no complete response within {self.deadline:g} s", response=response
                    ) from exc
                raise requests.ReadTimeout(exc, response=response) from exc
            except urllib3_exceptions.DecodeError as exc:
                raise requests.exceptions.ContentDecodingError(exc, response=response) from exc
            except (urllib3_exceptions.HTTPError, OSError) as exc:
                raise requests.ConnectionError(exc, response=response) from exc
            if not piece:
                break
            body += piece
            if len(body) > self.max_bytes:
                raise ResponseTooLarge(
                    f"response larger than the {self.max_bytes}-byte cap", response=response
                )
        return bytes(body)


def _shorten_read_timeout(raw, left: float) -> None:
    """Let no single socket read outlast the deadline."""
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        current = sock.gettimeout()
        if current is None or current > left:
            sock.settimeout(max(left, 0.001))


def guard_session(
    session: requests.Session,
    *,
    timeout: float,
    deadline: float | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> requests.Session:
    adapter = GuardedAdapter(timeout=timeout, deadline=deadline, max_bytes=max_bytes)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    session.max_redirects = 5
    return session


def guarded_session(
    *, timeout: float, deadline: float | None = None, max_bytes: int = DEFAULT_MAX_BYTES
) -> requests.Session:
    return guard_session(
        requests.Session(), timeout=timeout, deadline=deadline, max_bytes=max_bytes
    )
