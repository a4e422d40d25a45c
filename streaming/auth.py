"""WebSocket authentication: a `?token=` from POST /api/v1/websocket/token, or the session.

The session cookie is only trusted from the site's own origin (or no Origin, i.e. not a
browser): a page on another site must not ride a logged-in user's cookie (cross-site WebSocket
hijacking). Tokens work from any origin; that is how a WordPress dashboard connects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlparse

from channels.auth import get_user
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser

from streaming.tokens import token_verify


@dataclass(frozen=True)
class ApiKeyPrincipal:
    """The caller behind a token whose API key has no owning user."""

    key_id: str
    is_authenticated: bool = True
    is_anonymous: bool = False
    pk: None = None
    username: str = ""


@database_sync_to_async
def _principal_for(claims) -> Any:
    from trading.models import ApiKey

    if claims.key_id:
        key = ApiKey.objects.filter(id=claims.key_id, revoked=False).first()
        if key is None or key.has_expired:
            return None
        if key.owner_id is None:
            return ApiKeyPrincipal(key_id=key.id)
        return key.owner if key.owner.is_active else None
    if claims.user_id:
        return get_user_model().objects.filter(pk=claims.user_id, is_active=True).first()
    return None


def _same_origin(scope: dict[str, Any]) -> bool:
    headers = dict(scope.get("headers", []))
    origin = headers.get(b"origin")
    if origin is None:
        return True
    host = urlparse(origin.decode("latin1")).hostname or ""
    allowed = settings.ALLOWED_HOSTS
    return "*" in allowed or host in allowed


class WebSocketAuthMiddleware:
    def __init__(self, inner) -> None:
        self.inner = inner

    async def __call__(self, scope, receive, send):
        scope = dict(scope)
        query = parse_qs(scope.get("query_string", b"").decode("latin1"))
        token = (query.get("token") or [None])[0]
        scope["auth_error"] = None
        if token is not None:
            claims = token_verify(token)
            principal = await _principal_for(claims) if claims else None
            if principal is None:
                scope["user"] = AnonymousUser()
                scope["auth_error"] = "invalid_token"
            else:
                scope["user"] = principal
        elif _same_origin(scope):
            scope["user"] = await get_user(scope)
        else:
            scope["user"] = AnonymousUser()
            scope["auth_error"] = "cross_origin"
        return await self.inner(scope, receive, send)
