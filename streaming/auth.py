"""WebSocket authentication: a `?token=` from POST /api/v1/websocket/token, or the session.

The session cookie is only trusted from the site's own origin (or no Origin, i.e. not a
browser): a page on another site must not ride a logged-in user's cookie (cross-site WebSocket
hijacking). "Own origin" is exact: the Origin's scheme, host and port equal the request's
(Host header, and the scheme the connection or the trusted proxy says), or one of
CSRF_TRUSTED_ORIGINS. Tokens work from any origin; that is how a WordPress dashboard connects.

Each connection's principal (`scope["principal"]`: ("key", id) or ("user", pk)) is what
streaming.watch re-checks while the socket is open.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from channels.auth import get_user
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

from streaming.tokens import token_verify

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """The caller behind a token whose API key has no owning user."""

    key_id: str
    is_authenticated: bool = True
    is_anonymous: bool = False
    pk: None = None
    username: str = ""


def key_usable(key) -> bool:
    """Not revoked, not expired, and its owner (if any) active."""
    if key is None or key.revoked or key.has_expired:
        return False
    return key.owner_id is None or key.owner.is_active


@database_sync_to_async
def _principal_for(claims) -> Any:
    from trading.models import ApiKey

    if claims.key_id:
        key = ApiKey.objects.select_related("owner").filter(id=claims.key_id).first()
        if not key_usable(key):
            return None
        return ApiKeyPrincipal(key_id=key.id) if key.owner_id is None else key.owner
    if claims.user_id:
        return get_user_model().objects.filter(pk=claims.user_id, is_active=True).first()
    return None


def _origin_tuple(origin: str) -> tuple[str, str, int] | None:
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    scheme = (parts.scheme or "").lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    return scheme, parts.hostname.lower(), port or DEFAULT_PORTS[scheme]


def _request_tuple(scope: dict[str, Any], headers: dict[bytes, bytes]) -> tuple | None:
    host_header = headers.get(b"host", b"").decode("latin1").strip().lower()
    if not host_header:
        return None
    domain, port = split_domain_port(host_header)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return None
    scheme = "https" if scope.get("scheme") in ("wss", "https") else "http"
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name = proxy[0].removeprefix("HTTP_").replace("_", "-").lower().encode()
        if headers.get(name, b"").decode("latin1").strip() == proxy[1]:
            scheme = "https"
    try:
        number = int(port) if port else DEFAULT_PORTS[scheme]
    except ValueError:
        return None
    return scheme, domain.strip("[]"), number


def same_origin(scope: dict[str, Any]) -> bool:
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin")
    if origin is None:
        return True
    wanted = _origin_tuple(origin.decode("latin1"))
    if wanted is None:
        return False
    trusted = {_origin_tuple(o) for o in settings.CSRF_TRUSTED_ORIGINS}
    if wanted in trusted:
        return True
    ours = _request_tuple(scope, headers)
    return ours is not None and (wanted[0], wanted[1].strip("[]"), wanted[2]) == ours


def principal_of(user) -> tuple[str, Any] | None:
    if isinstance(user, ApiKeyPrincipal):
        return ("key", user.key_id)
    pk = getattr(user, "pk", None)
    return ("user", pk) if pk is not None else None


class WebSocketAuthMiddleware:
    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin1"))
        token = (query.get("token") or [None])[0]
        scope["auth_error"] = None
        scope["principal"] = None
        if token is not None:
            claims = token_verify(token)
            principal = await _principal_for(claims) if claims else None
            if principal is None:
                scope["user"] = AnonymousUser()
                scope["auth_error"] = "invalid_token"
            else:
                scope["user"] = principal
                # A token of an owned key is re-checked as the key (revocation) and the owner.
                scope["principal"] = ("key", claims.key_id) if claims.key_id else None
        elif same_origin(scope):
            scope["user"] = await get_user(scope)
        else:
            scope["user"] = AnonymousUser()
            scope["auth_error"] = "cross_origin"
        if scope["principal"] is None and scope["user"].is_authenticated:
            scope["principal"] = principal_of(scope["user"])
        return await self.inner(scope, receive, send)
