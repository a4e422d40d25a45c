"""Who is acting, and from where, for the audit log.

A request handled by Django is remembered by `AuditContextMiddleware` in a context variable;
who and where are read from it lazily, when an entry is written, because DRF authenticates
inside the view (it sets `request.user` and `request.auth` on the underlying HttpRequest).
Work that no request carries (strategy runs, Celery tasks, the daily-loss halt) names itself
with `audit_context(actor=..., via=...)`, which wins over the request. With neither, the actor
is "system". asgiref's sync_to_async copies context variables, so threads started by it see
the same context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from django.http import HttpRequest, HttpResponse

from audit.models import Via

WORDPRESS_PREFIX = "/wp-json/"
# The Trading Robot API paths the WordPress plugin speaks (tradingrobot.urls alias_patterns).
ALIAS_NAMESPACE = "aliases"


@dataclass(frozen=True)
class Who:
    actor: str
    via: str
    user_id: int | None = None
    api_key_id: str | None = None


_request: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)
_explicit: ContextVar[Who | None] = ContextVar("audit_explicit", default=None)

SYSTEM = Who(actor="system", via=Via.SYSTEM)


@contextmanager
def audit_context(
    *, actor: str, via: str, user_id: int | None = None, api_key_id: str | None = None
) -> Iterator[Who]:
    """Entries written inside are attributed to `actor` arriving `via` (a Via value)."""
    if via not in Via.values:
        raise ValueError(f"via must be one of {Via.values}")
    who = Who(actor=(actor or "system")[:150], via=via, user_id=user_id, api_key_id=api_key_id)
    token = _explicit.set(who)
    try:
        yield who
    finally:
        _explicit.reset(token)


def _via_for_request(request: HttpRequest, by_key: bool) -> str:
    path = request.path
    if path.startswith("/admin/"):
        return Via.ADMIN
    match = getattr(request, "resolver_match", None)
    if (
        path.startswith(WORDPRESS_PREFIX)
        or (match is not None and match.namespace == ALIAS_NAMESPACE)
        or request.headers.get("X-TRP-Source", "").strip().lower() == Via.WORDPRESS
    ):
        return Via.WORDPRESS
    return Via.API if by_key else Via.DASHBOARD


def _who_for_request(request: HttpRequest) -> Who:
    from trading.models import ApiKey

    key = getattr(request, "auth", None)
    user = getattr(request, "user", None)
    if isinstance(key, ApiKey):
        return Who(
            actor=f"key:{key.name}"[:150],
            via=_via_for_request(request, by_key=True),
            user_id=key.owner_id,
            api_key_id=key.pk,
        )
    if user is not None and user.is_authenticated and getattr(user, "pk", None) is not None:
        return Who(
            actor=user.get_username()[:150],
            via=_via_for_request(request, by_key=False),
            user_id=user.pk,
        )
    return Who(actor="anonymous", via=_via_for_request(request, by_key=False))


def current_who() -> Who:
    """The actor of an entry written now: the explicit context, else the request, else system."""
    explicit = _explicit.get()
    if explicit is not None:
        return explicit
    request = _request.get()
    if request is not None:
        return _who_for_request(request)
    return SYSTEM


class AuditContextMiddleware:
    """Remembers the current request for the audit log (and forgets it after the response)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(request)
        try:
            return self.get_response(request)
        finally:
            _request.reset(token)
