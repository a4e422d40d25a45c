"""Short-lived tokens for `/ws/updates?token=`, bound to an API key and its owner.

The token is opaque: its claims (which key, which user) are encrypted and authenticated
(Fernet: AES-128-CBC + HMAC-SHA256, with a key derived from SECRET_KEY), so a token that shows
up in a proxy's access log or a browser's history says nothing about the key behind it (it used
to carry the key's id, i.e. its prefix and a hash prefix). Fernet's timestamp bounds its age.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

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


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    derived = hashlib.sha256(f"{SALT}:{secret}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(derived))


def token_issue(
    *, key_id: str | None, user_id: int | None, subject: str | None = None
) -> WebSocketToken:
    claims = json.dumps({"k": key_id, "u": user_id, "s": subject}, separators=(",", ":"))
    token = _fernet(settings.SECRET_KEY).encrypt(claims.encode()).decode()
    expires_at = datetime.now(UTC) + timedelta(seconds=settings.WEBSOCKET_TOKEN_MAX_AGE)
    return WebSocketToken(token=token, expires_at=expires_at)


def token_verify(token: str) -> TokenClaims | None:
    """The token's claims, or None if it is forged, malformed or expired."""
    max_age = settings.WEBSOCKET_TOKEN_MAX_AGE
    if max_age < 0 or not isinstance(token, str) or len(token) > 4096:
        return None
    try:
        raw = _fernet(settings.SECRET_KEY).decrypt(token.encode("ascii"), ttl=max(max_age, 1))
        claims = json.loads(raw)
    except (InvalidToken, ValueError, TypeError, UnicodeError):
        return None
    if not isinstance(claims, dict):
        return None
    key_id, user_id, subject = claims.get("k"), claims.get("u"), claims.get("s")
    if not (key_id is None or isinstance(key_id, str)):
        return None
    if not (user_id is None or isinstance(user_id, int)):
        return None
    return TokenClaims(key_id=key_id, user_id=user_id, subject=subject)
