"""Short-lived signed tokens for `/ws/updates?token=`, bound to an API key and its owner."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.core import signing

SALT = "tradingrobot.ws-token"


@dataclass(frozen=True)
class WebSocketToken:
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenClaims:
    key_id: str | None
    user_id: int | None
    subject: str | None


def token_issue(
    *, key_id: str | None, user_id: int | None, subject: str | None = None
) -> WebSocketToken:
    claims = {"k": key_id, "u": user_id, "s": subject}
    token = signing.dumps(claims, salt=SALT, compress=True)
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.WEBSOCKET_TOKEN_MAX_AGE)
    return WebSocketToken(token=token, expires_at=expires_at)


def token_verify(token: str) -> TokenClaims | None:
    """The token's claims, or None if it is forged, malformed or expired."""
    try:
        claims = signing.loads(token, salt=SALT, max_age=settings.WEBSOCKET_TOKEN_MAX_AGE)
    except (signing.BadSignature, ValueError, TypeError):
        return None
    if not isinstance(claims, dict):
        return None
    return TokenClaims(key_id=claims.get("k"), user_id=claims.get("u"), subject=claims.get("s"))
