"""The channel interface, its error, and the one HTTP client every HTTP channel uses.

Every outbound call has a timeout (NOTIFICATIONS_TIMEOUT_SECONDS), reads at most
NOTIFICATIONS_MAX_RESPONSE_BYTES of the answer, and never follows a redirect (a redirect could
carry a signed body or a token in the URL somewhere else). Retries are not made here: the
delivery layer retries a failed attempt later with backoff, a bounded number of times.
"""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from django.conf import settings

from notifications.events import Notice


class ChannelError(Exception):
    """A failed send. `permanent`: retrying cannot help (bad target, 4xx). `retry_after`: the
    receiver's own wait in seconds (429)."""

    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.message = message
        self.permanent = permanent
        self.retry_after = retry_after


@dataclass
class Outgoing:
    """What a channel sends: the notice, where, with which secret and idempotency key."""

    notice: Notice
    target: str
    secret: str
    idempotency_key: str
    image_png: bytes | None = None


class ChannelBackend:
    kind = ""
    # Seconds between two messages to one target (the service's documented limit), 0 = none.
    min_interval_seconds = 0.0
    supports_image = False

    def validate(self, *, target: str, secret: str) -> dict[str, str]:
        """Field name -> problem, for a bad configuration."""
        raise NotImplementedError

    def send(self, message: Outgoing) -> None:
        """Deliver one message or raise ChannelError."""
        raise NotImplementedError

    def interval_for(self, target: str) -> float:
        return self.min_interval_seconds


def url_problem(url: str) -> str | None:
    from urllib.parse import urlsplit

    if not url or any(c.isspace() for c in url):
        return "must be an http(s) URL without spaces"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "must start with http:// or https://"
    if not parts.hostname:
        return "has no host name"
    if parts.username or parts.password:
        return "must not contain credentials"
    return None


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        raise ChannelError(f"refused to follow a redirect (HTTP {code})", permanent=True)


_opener = urllib.request.build_opener(_NoRedirect())


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            return None


def http_post(
    url: str, *, body: bytes, headers: dict[str, str], what: str, timeout: float | None = None
) -> Response:
    """POST and return the answer whatever its status; transport failures raise ChannelError.
    `what` names the call in errors: the URL may hold a token and is never put in a message."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    cap = settings.NOTIFICATIONS_MAX_RESPONSE_BYTES
    try:
        with _opener.open(
            request, timeout=timeout or settings.NOTIFICATIONS_TIMEOUT_SECONDS
        ) as answer:
            data = answer.read(cap + 1)
            status, answer_headers = answer.status, dict(answer.headers.items())
    except urllib.error.HTTPError as exc:
        try:
            data = exc.read(cap + 1)
        except Exception:  # noqa: BLE001
            data = b""
        status, answer_headers = exc.code, dict(exc.headers.items()) if exc.headers else {}
    except ChannelError:
        raise
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ChannelError(f"{what}: {type(reason).__name__}: {reason}"[:300]) from None
    if len(data) > cap:
        raise ChannelError(f"{what}: answer larger than {cap} bytes")
    return Response(status, data, {k.lower(): v for k, v in answer_headers.items()})


def raise_for_status(response: Response, what: str, detail: str = "") -> None:
    """Map an HTTP status: 2xx passes, 429 and 5xx are temporary, other 4xx permanent."""
    if 200 <= response.status < 300:
        return
    detail = detail or response.body[:200].decode("utf-8", "replace")
    message = f"{what}: HTTP {response.status}" + (f": {detail}" if detail else "")
    if response.status == 429:
        retry_after = None
        try:
            retry_after = float(response.headers.get("retry-after", ""))
        except ValueError:
            pass
        raise ChannelError(message, retry_after=retry_after)
    if response.status >= 500 or response.status in (408, 425):
        raise ChannelError(message)
    raise ChannelError(message, permanent=True)


def multipart(
    fields: dict[str, str], files: dict[str, tuple[str, bytes, str]]
) -> tuple[bytes, str]:
    """A multipart/form-data body and its content type."""
    boundary = f"trp{secrets.token_hex(12)}"
    out = bytearray()
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for name, (filename, content, ctype) in files.items():
        out += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: {ctype}\r\n\r\n'
        ).encode()
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def plain_text(notice: Notice) -> str:
    return f"{notice.title}\n{notice.text}"
