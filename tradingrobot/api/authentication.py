"""`Authorization: Bearer <api key>` over djangorestframework-api-key's hashed keys."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions

from trading.models import ApiKey
from tradingrobot.api import auth_failures


class ApiKeyUser(AnonymousUser):
    """The request's user when a key has no owning Django user: authenticated, not staff."""

    def __init__(self, key: ApiKey) -> None:
        self.key = key
        self.username = f"api-key:{key.name}"

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    @property
    def is_anonymous(self) -> bool:  # type: ignore[override]
        return False

    def __str__(self) -> str:
        return self.username


# Verified keys, per process, for API_KEY_CACHE_SECONDS: a key lookup is a query plus a hash,
# on every request. Saving or deleting a key or a user clears this process's entries at once
# (tradingrobot.api.apps); other processes, and writes that send no signal
# (`QuerySet.update(revoked=True)`, `update(is_active=False)`), take effect within the interval,
# when the key is looked up again.
_verified: dict[str, tuple[float, object, ApiKey]] = {}
_MAX_CACHED = 1024


def verified_keys_clear() -> None:
    _verified.clear()


def key_principal(key: ApiKey):
    """The user a usable key acts as, or None if the key must not work: revoked, expired, or
    owned by a user who is inactive (a deactivated user's keys stop with them)."""
    if key.revoked or key.has_expired:
        return None
    if key.owner_id is None:
        return ApiKeyUser(key)
    owner = key.owner
    return owner if owner.is_active else None


def _lookup(raw: str, request=None):
    digest = hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()
    now = time.monotonic()
    hit = _verified.get(digest)
    if hit is not None and hit[0] > now:
        return hit[1], hit[2]
    if request is not None:
        auth_failures.refuse_if_throttled(request)
    try:
        key = ApiKey.objects.get_from_key(raw)
    except (ApiKey.DoesNotExist, ValueError):
        key = None
    user = key_principal(key) if key is not None else None
    if user is None:
        if request is not None:
            auth_failures.failure_record(request)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid API key.")
        raise exceptions.AuthenticationFailed("API key revoked, expired or its owner inactive.")
    seconds = settings.API_KEY_CACHE_SECONDS
    if seconds > 0:
        if len(_verified) >= _MAX_CACHED:
            _verified.clear()
        _verified[digest] = (now + seconds, user, key)
    return user, key


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).decode("latin1")
        if not header:
            return None
        parts = header.split()
        if parts[0].lower() != self.keyword.lower():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Authorization header must be 'Bearer <api key>'."
            )
        user, key = _lookup(parts[1], request)
        if key.has_expired:  # the expiry may pass while the key is cached
            raise exceptions.AuthenticationFailed("API key revoked or expired.")
        return user, key

    def authenticate_header(self, request) -> str:
        return self.keyword
